"""Media I/O on PyAV: streaming encode (writer), probing (probe).

Everything here is frame by frame: a writer holds at most one frame and the
encoder's own look-ahead, so memory does not grow with duration.
"""
