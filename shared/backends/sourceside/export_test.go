package sourceside

// SwapStandIns replaces the registered stand-ins (nil: none) and returns what was registered, for the
// tests of a build without them.
func SwapStandIns(s *StandIns) *StandIns { return standIns.Swap(s) }
