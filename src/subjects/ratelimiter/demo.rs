//! The guided demo's words for the rate limiter.

use crate::subjects::DemoScript;

pub static SCRIPT: DemoScript = DemoScript {
    steps: [
        (
            "A healthy cluster",
            "Three rate-limiter nodes share their counters in Redis. The monitor looks at every node, Redis and each invariant every second.",
        ),
        (
            "Load",
            "Clients send /check requests across the nodes. Some keys hit their limit and are refused, as they should be.",
        ),
        (
            "A fault",
            "One node is killed, the way a crashed host or an OOM kill would take it. Nothing restarts it by itself.",
        ),
        (
            "Detection",
            "The monitor's next look finds the node down and opens a ticket.",
        ),
        (
            "The AI diagnoses",
            "The agent claims the ticket and investigates through the guarded shell: every command is checked by the policy first.",
        ),
        (
            "Recovery",
            "The agent applies the least invasive fix and checks its work with the same observation the monitor makes.",
        ),
        (
            "Verified health",
            "The agent's word closes nothing: the ticket is resolved when the monitor sees the violation gone.",
        ),
    ],
    ticket: "node_down",
    refused: "refused by their limit",
};
