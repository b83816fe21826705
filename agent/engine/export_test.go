package engine

// What the engine's external tests reach inside for.
var (
	DaysUntil   = daysUntil
	ChangeSteps = changeSteps
	SyncSteps   = syncSteps
)

// SetLastOpID records id as local's last operation, as a crash between the
// journal's write and the account state's would leave it.
func (e *Engine) SetLastOpID(local, id string) error {
	return e.update(local, func(r *record) { r.LastOpID, r.PasswordOpID = id, id })
}

// DefaultThrottle is the throttle an engine uses when not told otherwise.
func DefaultThrottle() ThrottleConfig { return ThrottleConfig{}.withDefaults() }
