// Collections run side by side up to this many at once (xunit's default is one per core, and it
// starts no more collections than this): the end-to-end tests spend their time waiting on the
// control plane, the workers and Docker, so the stage's wall time is the sum of the collections'
// times over this number, or the longest collection when that is more. Measured on 2026-12-03
// (2 cores, the other test projects running alongside): 4 at once took 9 minutes for 33 minutes of
// tests, the longest collection 8 minutes of them.
[assembly: Xunit.CollectionBehavior(MaxParallelThreads = 6)]
