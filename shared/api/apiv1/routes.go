package apiv1

// The job actions' path segments (POST /groups/{group}/<action>, POST /plans/{plan}/<action>): the wire's
// names of job kinds the domain runs; apiserver's TestActionsNameTheDomainsJobKinds checks they agree.
const (
	JobChangePoint = "change-recovery-point"
	JobReprotect   = "reprotect"
	JobCleanupTest = "cleanup-test-failover"
	JobCommit      = "commit"
	JobFailback    = "failback"
)

// Every route declares who may call it. Each role comes in through its own door: a path prefix served
// by its own function, whose keys the Functions host checks before the handler sees the request
// (functions/<door>/function.json). A host key opens every door; a function key only its own function's
// (devhost follows the host there). The agent's door asks the host for no key: the handler checks the
// group's agent key on every request.

// Role is what a credential speaks for.
type Role string

const (
	RoleOperator Role = "operator" // the api function's keys (or a host key): everything
	RoleReader   Role = "reader"   // the reader function's keys: status, points, history, jobs, plans
	RoleAgent    Role = "agent"    // one group's agent key: that group's reports and reads
	RolePeer     Role = "peer"     // the peer function's keys: the calls reprotect and failback make
)

// Roles lists every role, operator first.
var Roles = []Role{RoleOperator, RoleReader, RoleAgent, RolePeer}

// Doors are the path prefixes each role's requests come in under.
var Doors = map[Role]string{
	RoleOperator: "/api/v1",
	RoleReader:   "/api/read/v1",
	RoleAgent:    "/api/agent/v1",
	RolePeer:     "/api/peer/v1",
}

// Route is one operation: its method and path under a door, and the roles that may call it (the
// operator may call every route).
type Route struct {
	Method, Path string
	Roles        []Role
}

// Pattern is the route's http.ServeMux pattern under door.
func (r Route) Pattern(door string) string { return r.Method + " " + door + r.Path }

// Key names the route independently of its door.
func (r Route) Key() string { return r.Method + " " + r.Path }

// Allows says whether role may call the route.
func (r Route) Allows(role Role) bool {
	if role == RoleOperator {
		return true
	}
	for _, x := range r.Roles {
		if x == role {
			return true
		}
	}
	return false
}

var (
	readers = []Role{RoleReader}
	agents  = []Role{RoleAgent}
	peers   = []Role{RolePeer}
)

// Routes is the whole REST API.
var Routes = []Route{
	{"GET", "/health", readers},
	{"GET", "/openapi.json", []Role{RoleReader, RolePeer}},
	{"GET", "/groups", readers},
	{"PUT", "/groups/{group}", peers},
	{"GET", "/groups/{group}", []Role{RoleReader, RoleAgent, RolePeer}},
	{"DELETE", "/groups/{group}", peers},
	{"POST", "/groups/{group}/agent", agents},
	{"POST", "/groups/{group}/agent-key", nil},
	{"POST", "/groups/{group}/resync", nil},
	{"POST", "/groups/{group}/seed", peers},
	{"GET", "/groups/{group}/stream-key", agents},
	{"GET", "/groups/{group}/disks/{vm}/{disk}/hashes", agents},
	{"GET", "/groups/{group}/recovery-points", readers},
	{"GET", "/groups/{group}/rpo-history", readers},
	{"POST", "/groups/{group}/events", agents},
	{"GET", "/groups/{group}/events", readers},
	{"POST", "/groups/{group}/failover", peers},
	{"POST", "/groups/{group}/" + JobChangePoint, nil},
	{"POST", "/groups/{group}/" + JobReprotect, nil},
	{"POST", "/groups/{group}/" + JobCleanupTest, nil},
	{"POST", "/groups/{group}/" + JobCommit, nil},
	{"POST", "/groups/{group}/" + JobFailback, nil},
	{"GET", "/plans", readers},
	{"PUT", "/plans/{plan}", nil},
	{"GET", "/plans/{plan}", readers},
	{"DELETE", "/plans/{plan}", nil},
	{"POST", "/plans/{plan}/failover", nil},
	{"POST", "/plans/{plan}/" + JobCleanupTest, nil},
	{"POST", "/plans/{plan}/" + JobCommit, nil},
	{"GET", "/jobs", readers},
	{"GET", "/jobs/dead-letters", readers},
	{"GET", "/jobs/{id}", []Role{RoleReader, RolePeer}},
	{"POST", "/jobs/{id}/acknowledge", nil},
}
