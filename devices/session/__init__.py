"""The running session: the worker that streams a device through the pipeline, its display
buffers, the rep tally, and the controller that owns one source's session and recording."""
