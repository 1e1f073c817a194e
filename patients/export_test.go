package patients

// SetApplyHook makes s call f with each raw record before applying it, to stand in for a bug.
func SetApplyHook(s *Stage, f func(data []byte)) { s.testHookApply = f }
