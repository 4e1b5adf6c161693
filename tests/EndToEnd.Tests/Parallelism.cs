// Collections run side by side up to this many at once (xunit's default is one per core, and it
// starts no more collections than this): the end-to-end tests spend their time waiting on the
// control plane, the workers and Docker. Measured on 2026-12-03 (2 cores, the other test projects
// alongside): 4 at once, 8m58s for the stage; 6 at once, 8m56s, while the Core and Worker tests beside
// it slowed from 3m29s / 2m33s to 5m07s / 3m43s and a Worker test's 60 s bound ran out. Four it stays.
[assembly: Xunit.CollectionBehavior(MaxParallelThreads = 4)]
