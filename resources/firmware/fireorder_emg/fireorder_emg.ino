/*
 * fireorder_emg: sample N analog pins at a fixed rate on a hardware timer and stream them
 * to fireorder over serial, as fob1 frames (binary, any rate) or text lines (low rates).
 *
 * Board: Arduino Uno / Nano / Pro Mini (ATmega328P, 16 MHz). Uno has A0-A5 (6 channels),
 * Nano and Pro Mini also A6-A7 (8 channels). See ../README.md for wiring, rates and baud.
 *
 * How it samples: Timer1 in CTC mode fires at FS_HZ; its interrupt starts the ADC on the
 * first pin, and the ADC-complete interrupt stores the result and starts the next pin, so
 * no interrupt ever waits for a conversion. When the last pin is done the set goes into a
 * ring buffer with its sample counter; loop() empties the ring into the serial port. If the
 * ring is full (the link is too slow) the set is dropped but the counter still advances, so
 * the host sees an exact gap instead of silently shifted data.
 *
 * The framing code lives one folder up (fireorder_fob1.c/.h) so that the host tests compile
 * the very same file. Build with it as a library:
 *   arduino-cli compile --fqbn arduino:avr:nano --library .. fireorder_emg
 * or copy fireorder_fob1.h and fireorder_fob1.c next to this file (Arduino IDE).
 *
 * ESP32: the register code below is AVR-only. Use a hardware timer (timerBegin /
 * timerAttachInterrupt) whose ISR only notifies a task (analogRead is not ISR-safe there),
 * or better the continuous ADC driver (adc_continuous_*, DMA) at FS_HZ x N_CHANNELS; keep
 * the counter, the ring buffer and fob1_encode exactly as here. Native USB or 2 Mbaud make
 * 4 kHz x 8 channels easy on it.
 */
#include "fireorder_fob1.h"

// ---- configuration (each may also be set with -D on the compiler command line) -----------
#ifndef FS_HZ
#define FS_HZ 2000  // samples per second per channel
#endif
#ifndef N_CHANNELS
#define N_CHANNELS 4  // pins A0.. in the order of PINS below
#endif
#ifndef BAUD
#define BAUD 1000000UL  // 16 MHz AVR: 1 Mbaud is exact (U2X, UBRR = 1)
#endif
#ifndef WIRE_TEXT
#define WIRE_TEXT 0  // 1: text lines "counter,v1,...,vN" for low rates and quick looks
#endif
#ifndef RING_FRAMES
#define RING_FRAMES 32  // sets buffered between the interrupts and loop()
#endif

#if N_CHANNELS < 1 || N_CHANNELS > 8
#error "N_CHANNELS must be 1..8 (A0-A7)"
#endif
#if !defined(__AVR__)
#error "the timer/ADC code is for AVR boards (Uno/Nano); see the ESP32 note at the top"
#endif

// ADC multiplexer channel of each sampled pin (A0 = 0 ... A7 = 7)
static const uint8_t PINS[8] = {0, 1, 2, 3, 4, 5, 6, 7};

// Timer1 compare value: prescaler 1 up to 65536 ticks per sample (FS_HZ >= 245 Hz)
#if (F_CPU / FS_HZ) <= 65536UL
#define T1_CS _BV(CS10)
#define T1_TOP ((uint16_t)(F_CPU / FS_HZ - 1UL))
#else
#define T1_CS _BV(CS11)  // prescaler 8: down to 31 Hz
#define T1_TOP ((uint16_t)(F_CPU / 8UL / FS_HZ - 1UL))
#endif

// ADC clock: the slowest (most accurate) prescaler that still fits all conversions in a
// sample period with margin; 13 ADC clocks per conversion. Above 200 kHz the ADC loses
// resolution (about 9 effective bits at 500 kHz, 8 at 1 MHz).
#define CONVERSIONS_PER_S (FS_HZ * N_CHANNELS)  // (no casts: used in #if)
#if CONVERSIONS_PER_S <= 7000UL
#define ADC_PS (_BV(ADPS2) | _BV(ADPS1) | _BV(ADPS0))  // /128: 125 kHz
#elif CONVERSIONS_PER_S <= 14000UL
#define ADC_PS (_BV(ADPS2) | _BV(ADPS1))  // /64: 250 kHz
#elif CONVERSIONS_PER_S <= 28000UL
#define ADC_PS (_BV(ADPS2) | _BV(ADPS0))  // /32: 500 kHz
#else
#define ADC_PS (_BV(ADPS2))  // /16: 1 MHz
#endif

struct SampleSet {
  uint16_t counter;
  int16_t value[N_CHANNELS];
};

static volatile SampleSet ring[RING_FRAMES];
static volatile uint8_t ring_head = 0;  // next slot the ADC interrupt fills
static volatile uint8_t ring_tail = 0;  // next slot loop() sends
static volatile uint16_t sample_counter = 0;  // counter of the next timer tick
static volatile uint16_t set_counter = 0;     // counter of the set being converted
static volatile uint8_t adc_channel = N_CHANNELS;  // N_CHANNELS = idle
static volatile uint16_t overruns = 0;   // timer fired while the previous set converted
static volatile uint16_t overflows = 0;  // ring full: a set was dropped
static int16_t current[N_CHANNELS];      // the set being converted (interrupts only)

static inline void adc_start(uint8_t index) {
  ADMUX = _BV(REFS0) | (PINS[index] & 0x0F);  // AVcc reference, right-adjusted result
  ADCSRA |= _BV(ADSC);
}

ISR(TIMER1_COMPA_vect) {
  uint16_t tick = sample_counter++;  // every tick owns a counter value, sent or not
  if (adc_channel < N_CHANNELS) {    // the last set is not finished: this tick is lost,
    overruns++;                      // which the host sees as a gap of one sample
    return;
  }
  set_counter = tick;
  adc_channel = 0;
  adc_start(0);
}

ISR(ADC_vect) {
  current[adc_channel] = (int16_t)ADC;
  adc_channel++;
  if (adc_channel < N_CHANNELS) {
    adc_start(adc_channel);
    return;
  }
  uint8_t next = (uint8_t)((ring_head + 1) % RING_FRAMES);
  if (next == ring_tail) {
    overflows++;
  } else {
    volatile SampleSet *slot = &ring[ring_head];
    slot->counter = set_counter;
    for (uint8_t ch = 0; ch < N_CHANNELS; ch++) {
      slot->value[ch] = current[ch];
    }
    ring_head = next;
  }
}

void setup() {
  Serial.begin(BAUD);
#if WIRE_TEXT
  Serial.print("# fireorder_emg text fs=");
  Serial.print((long)FS_HZ);
  Serial.print(" channels=");
  Serial.print((long)N_CHANNELS);
  Serial.print("\n");
#endif
  noInterrupts();
  // ADC: AVcc reference, interrupt on completion, prescaler as above
  ADMUX = _BV(REFS0);
  ADCSRA = _BV(ADEN) | _BV(ADIE) | ADC_PS;
  ADCSRB = 0;
  // Timer1: CTC mode (WGM12) with TOP = OCR1A, interrupt on compare match A
  TCCR1A = 0;
  TCCR1B = 0;
  TCNT1 = 0;
  OCR1A = T1_TOP;
  TIMSK1 = _BV(OCIE1A);
  TCCR1B = _BV(WGM12) | T1_CS;
  interrupts();
}

static void send(const SampleSet &set) {
#if WIRE_TEXT
  Serial.print((long)set.counter);
  for (uint8_t ch = 0; ch < N_CHANNELS; ch++) {
    Serial.print(',');
    Serial.print((long)set.value[ch]);
  }
  Serial.print('\n');
#else
  uint8_t frame[FOB1_FRAME_LEN(N_CHANNELS)];
  size_t len = fob1_encode(frame, N_CHANNELS, set.counter, set.value);
  Serial.write(frame, len);
#endif
}

void loop() {
  // Only the interrupt writes ring_head and only loop() writes ring_tail; both are single
  // bytes (atomic on AVR), and the interrupt never fills the slot at ring_tail.
  while (ring_tail != ring_head) {
    SampleSet set;
    volatile SampleSet *slot = &ring[ring_tail];
    set.counter = slot->counter;
    for (uint8_t ch = 0; ch < N_CHANNELS; ch++) {
      set.value[ch] = slot->value[ch];
    }
    ring_tail = (uint8_t)((ring_tail + 1) % RING_FRAMES);
    send(set);  // may block while the serial buffer drains; sampling goes on meanwhile
  }
}
