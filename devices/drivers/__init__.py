"""Drivers: every producer of chunks (simulator, serial board, BrainFlow board, file replay).

Each driver is one module that registers itself with :mod:`devices.drivers.base`; a new
source is one new file here plus its form in the window and its options in the CLI.
"""
