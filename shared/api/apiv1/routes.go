package apiv1

import "net/http"

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

// Route is one operation: its method and path under a door, the roles that may call it (the operator
// may call every route), and what it takes and answers.
type Route struct {
	Method, Path string
	Roles        []Role
	// Summary says what the operation does.
	Summary string
	// Body is the request body's type (nil: none); Answers the answer's type by status (nil: no
	// content); Query the query parameters it reads.
	Body    any
	Answers map[int]any
	Query   []string
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

var jobAccepted = map[int]any{http.StatusAccepted: JobView{}}

var (
	readers = []Role{RoleReader}
	agents  = []Role{RoleAgent}
	peers   = []Role{RolePeer}
)

// Routes is the whole REST API: each operation with the roles that may call it and what the OpenAPI
// document says of it (built from this table and the wire types themselves: openapi.go).
var Routes = []Route{
	{Method: "GET", Path: "/health", Roles: readers, Summary: "The app's health and each dependency's (503 when one is unreachable)", Answers: map[int]any{200: HealthView{}, 503: HealthView{}}},
	{Method: "GET", Path: "/openapi.json", Roles: []Role{RoleReader, RolePeer}, Summary: "This document", Answers: map[int]any{200: map[string]any{}}},
	{Method: "GET", Path: "/groups", Roles: readers, Summary: "Every group", Answers: map[int]any{200: GroupList{}}},
	{Method: "PUT", Path: "/groups/{group}", Roles: peers, Summary: "Enable replication of a group (201) or change its spec (200)", Body: GroupSpec{}, Answers: map[int]any{200: GroupView{}, 201: GroupView{}}},
	{Method: "GET", Path: "/groups/{group}", Roles: []Role{RoleReader, RoleAgent, RolePeer}, Summary: "A group: state, health, RPO, progress, its disks' capture", Answers: map[int]any{200: GroupView{}}},
	{Method: "DELETE", Path: "/groups/{group}", Roles: peers, Summary: "Disable replication; keepData=false also removes the target disks and state (204)", Answers: map[int]any{200: GroupView{}, 204: nil}, Query: []string{"keepData"}},
	{Method: "POST", Path: "/groups/{group}/agent", Roles: agents, Summary: "The agent's heartbeat; the answer says what it must do", Body: AgentReport{}, Answers: map[int]any{200: AgentInstructions{}}},
	{Method: "POST", Path: "/groups/{group}/agent-key", Summary: "A new agent key for the group (shown once; the previous one stops working)", Answers: map[int]any{200: AgentKeyView{}}},
	{Method: "POST", Path: "/groups/{group}/resync", Summary: "Ask for a checksum resync", Answers: map[int]any{202: ResyncView{}}},
	{Method: "POST", Path: "/groups/{group}/seed", Roles: peers, Summary: "Seed this site's disks from managed disks (a reprotect's peer calls it until done)", Body: SeedRequest{}, Answers: map[int]any{200: SeedStatus{}}},
	{Method: "GET", Path: "/groups/{group}/stream-key", Roles: agents, Summary: "The group's change-stream key, for its agents", Answers: map[int]any{200: StreamKeyView{}}},
	{Method: "GET", Path: "/groups/{group}/disks/{vm}/{disk}/hashes", Roles: agents, Summary: "A page of a target disk's 1 MiB block hashes", Answers: map[int]any{200: DiskHashes{}}, Query: []string{"from", "count"}},
	{Method: "GET", Path: "/groups/{group}/recovery-points", Roles: readers, Summary: "Recovery points, newest first", Answers: map[int]any{200: PointsPage{}}, Query: []string{"kind", "from", "to", "limit", "after"}},
	{Method: "GET", Path: "/groups/{group}/rpo-history", Roles: readers, Summary: "The group's RPO a minute at a time over its retention window, oldest first", Answers: map[int]any{200: RPOHistoryView{}}, Query: []string{"from", "to"}},
	{Method: "POST", Path: "/groups/{group}/events", Roles: agents, Summary: "An event the agent reports", Body: EventReport{}, Answers: map[int]any{204: nil}},
	{Method: "GET", Path: "/groups/{group}/events", Roles: readers, Summary: "The group's history, newest first", Answers: map[int]any{200: EventsPage{}}, Query: []string{"limit", "after"}},
	{Method: "POST", Path: "/groups/{group}/failover", Roles: peers, Summary: "Start a failover: test, planned or unplanned, at a recovery point", Body: FailoverRequest{}, Answers: jobAccepted},
	{Method: "POST", Path: "/groups/{group}/" + JobChangePoint, Summary: "Change a failed-over group's recovery point", Body: ChangePointRequest{}, Answers: jobAccepted},
	{Method: "POST", Path: "/groups/{group}/" + JobReprotect, Summary: "Reprotect a failed-over group back to the source region (the body is optional)", Body: ReprotectRequest{}, Answers: jobAccepted},
	{Method: "POST", Path: "/groups/{group}/" + JobCleanupTest, Summary: "Clean up a test failover", Answers: jobAccepted},
	{Method: "POST", Path: "/groups/{group}/" + JobCommit, Summary: "Commit a failover", Answers: jobAccepted},
	{Method: "POST", Path: "/groups/{group}/" + JobFailback, Summary: "Fail a reprotected group back to its original region", Answers: jobAccepted},
	{Method: "POST", Path: "/groups/{group}/drills", Summary: "Start a drill now: a test failover, the drill's checks, and a cleanup that always runs (the body is optional)", Body: DrillRequest{}, Answers: jobAccepted},
	{Method: "GET", Path: "/groups/{group}/drills", Roles: readers, Summary: "The group's drill reports, newest first", Answers: map[int]any{200: DrillList{}}, Query: []string{"limit"}},
	{Method: "GET", Path: "/groups/{group}/drills/{id}", Roles: readers, Summary: "A drill's report: point, RTO, boot evidence, checks with their output, steps, cleanup", Answers: map[int]any{200: DrillView{}}},
	{Method: "GET", Path: "/plans", Roles: readers, Summary: "Every recovery plan", Answers: map[int]any{200: PlanList{}}},
	{Method: "PUT", Path: "/plans/{plan}", Summary: "Create or change a recovery plan", Body: PlanSpec{}, Answers: map[int]any{200: PlanView{}}},
	{Method: "GET", Path: "/plans/{plan}", Roles: readers, Summary: "A recovery plan", Answers: map[int]any{200: PlanView{}}},
	{Method: "DELETE", Path: "/plans/{plan}", Summary: "Delete a recovery plan", Answers: map[int]any{204: nil}},
	{Method: "POST", Path: "/plans/{plan}/failover", Summary: "Fail a plan's groups over, in its order", Body: FailoverRequest{}, Answers: jobAccepted},
	{Method: "POST", Path: "/plans/{plan}/drills", Summary: "Start the plan's drill now: its test failover in boot-group order, the drill's checks, and a cleanup that always runs", Body: DrillRequest{}, Answers: jobAccepted},
	{Method: "GET", Path: "/plans/{plan}/drills", Roles: readers, Summary: "The plan's drill reports, newest first", Answers: map[int]any{200: DrillList{}}, Query: []string{"limit"}},
	{Method: "GET", Path: "/plans/{plan}/drills/{id}", Roles: readers, Summary: "A plan drill's report", Answers: map[int]any{200: DrillView{}}},
	{Method: "POST", Path: "/plans/{plan}/" + JobCleanupTest, Summary: "Clean up a plan's test failover", Answers: jobAccepted},
	{Method: "POST", Path: "/plans/{plan}/" + JobCommit, Summary: "Commit a plan's failover", Answers: jobAccepted},
	{Method: "GET", Path: "/jobs", Roles: readers, Summary: "Recent jobs, newest first: a group's only with group, in a state with state (Queued, Running, Succeeded, Failed), of a type with type", Answers: map[int]any{200: JobList{}}, Query: []string{"group", "state", "type", "limit"}},
	{Method: "GET", Path: "/jobs/dead-letters", Roles: readers, Summary: "Job messages the queue gave up on", Answers: map[int]any{200: DeadLetterList{}}},
	{Method: "GET", Path: "/jobs/{id}", Roles: []Role{RoleReader, RolePeer}, Summary: "A job, its steps and result", Answers: map[int]any{200: JobView{}}},
	{Method: "POST", Path: "/jobs/{id}/cancel", Summary: "Cancel a drill: its next step skips to its cleanup, which runs whole (409 for a job without a cleanup)", Answers: map[int]any{200: JobView{}}},
	{Method: "POST", Path: "/jobs/{id}/acknowledge", Summary: "Confirm a manual action a job waits for", Body: AcknowledgeRequest{}, Answers: map[int]any{200: JobView{}}},
}
