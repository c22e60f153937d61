package replication

import "time"

// Health rates a group from its RPO and the age of its newest recovery point alone, with the reason
// (RateGroup's first part, for the threshold tests).
func Health(rpo time.Duration, lastPoint time.Time, now time.Time, th healthThresholds) (string, string) {
	errs := rpoErrors(rpo, lastPoint, now, th)
	return healthLevel(errs), HealthReason(errs)
}
