"""The sandbox runner: the part of the sandbox that runs on the other side of the boundary (a process the
subprocess sandbox starts, or a container's). Stdlib only; the host sends these modules' sources to a bare
interpreter (``launch``), so nothing here imports the rest of the plugin.

- ``supervisor``: the event loop, the zygotes, time limits and the final verdict;
- ``judge``: the test's process, the only one that decides a verdict;
- ``program``: the program's process, which answers the judge's calls;
- ``crossing``: what may cross from the program to the judge (plain data only);
- ``channel``: the socket between them; ``framing``: the frames of every pipe;
- ``isolation``, ``cgroups``: namespaces, mounts, uids, cgroups, limits; ``procs``: /proc and signals;
- ``reasons``: how a verdict explains itself.
"""
