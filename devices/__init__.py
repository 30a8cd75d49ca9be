"""Everything between a source of samples and the window or CLI, without Qt.

* :mod:`devices.drivers`: producers of chunks (simulator, serial, BrainFlow, file replay);
* :mod:`devices.simulation`: the simulator's signal model, presets and ground truth;
* :mod:`devices.files`: file I/O (readers, the BDF+ format and sidecar, the recorder, repair);
* :mod:`devices.session`: the running session (worker, display buffers, tally, controller).
"""
