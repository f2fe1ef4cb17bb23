// Package spec checks the simulated Agent against the official Symphony
// OpenAPI files (finos/symphony-api-spec): [Validator] validates every request
// and response over real HTTP, and [CheckEvent] holds an event to a stricter
// schema than the spec's. Only tests import it, so that symbridge's binary
// links neither kin-openapi nor a JSON-schema library; the simulator itself
// (package symphonytest) stays free of them for demo and agent-sim.
package spec
