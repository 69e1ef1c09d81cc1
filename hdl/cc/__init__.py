"""Congestion signalling in RTL (DESIGN.md §2 ``cc/``; user guide: docs/congestion.md).

* :mod:`.lfsr`       -- seedable leap-forward LFSR, the only randomness in the datapath
* :mod:`.red`        -- the marking-rule interface, and RED/FECN (DCTCP step as a special case)
* :mod:`.phantom`    -- Uno/HULL-style phantom queue: a byte counter drained at gamma x C
* :mod:`.marker`     -- FECN marker per egress (port, VL), choosing real / phantom / both
* :mod:`.egress`     -- one output port's markers (one per VL) and phantom queue
* :mod:`.cnp`        -- notification point: a sink that echoes marks back as CNPs
* :mod:`.rate`       -- reaction point: the reaction-algorithm interface, DCQCN, rate limiter
* :mod:`.harness`    -- RTL benches for the tests and benchmarks
* :mod:`.incast`     -- N -> 1 incast closed loop in RTL, and its experiment
* :mod:`.experiment` -- bench runner, SVG plots, ``ubproto sim`` entry for ``kind: incast``

Python models of the same arithmetic sit beside the hardware (``LfsrModel``,
``RedProfile.hw_probability``, ``PhantomModel``, ``DcqcnModel``); the tests compare them
clock by clock.
"""
