package worker

// Sizes of the staged jobs' moves (staged.go), for the tests of package
// worker_test that must stage more than one statement or one round moves.
const (
	StagedBatch = stagedBatch
	StagedRound = stagedBatch * stagedBatchesPerRound
)
