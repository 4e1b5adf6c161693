// Collections run side by side up to this many at once (xunit's default is one per core): the
// end-to-end tests spend their time waiting on the control plane, the workers and Docker.
[assembly: Xunit.CollectionBehavior(MaxParallelThreads = 4)]
