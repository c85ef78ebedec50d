package xds

// TEMPORARY until the rate-limited logger lands.
type RateLog struct{}

func NewRateLog(burst, everySec, keys int) *RateLog { return &RateLog{} }
func (*RateLog) Allow(key string) (bool, int)       { return true, 0 }
func Truncate(s string, max int) string {
	if len(s) > max {
		return s[:max]
	}
	return s
}
