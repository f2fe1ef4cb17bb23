package symphonytest_test

import (
	"fmt"

	"github.com/symbridge/symbridge/pkg/symphony"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
)

// A simulated Agent fed by the generator. A client logs in at the returned
// base URL (pod, key manager and Agent alike) and reads its feeds; tests
// usually wrap the handler with a Validator first (Agent.Use).
func Example() {
	agent := symphonytest.New(symphonytest.Config{Username: "my-bot"})
	defer agent.Close()
	baseURL := agent.Start()
	_ = baseURL // e.g. symphony.ClientConfig{PodURL: baseURL, AgentURL: baseURL, ...}

	agent.OnAck(func(feedID string, events [][]byte) {
		// Called before the read carrying the ackId goes on: check here
		// that these events are already stored downstream.
	})

	gen := symphonytest.NewGenerator(symphonytest.GeneratorConfig{Seed: 1})
	agent.Emit(gen.All()...) // one event of every type, to every feed
	agent.Emit(gen.Action(symphony.TypeUserJoinedRoom, symphony.TypeUserJoinedRoom)...)

	ev := symphony.ParseEvent(gen.Event(symphony.TypeConnectionRequested, symphonytest.WithoutID()))
	serial, _ := symphonytest.SerialOf(ev.Raw)
	fmt.Println(ev.Type, ev.ID == "", ev.HasStream, serial)
	fmt.Println(agent.Stats().EventsEmitted)
	// Output:
	// CONNECTIONREQUESTED true false 20
	// 19
}
