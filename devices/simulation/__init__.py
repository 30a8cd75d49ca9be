"""The built-in simulator's signal model, presets and ground truth (the device that streams
it is :mod:`devices.drivers.simulator`)."""
