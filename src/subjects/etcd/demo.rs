//! The guided demo's words for etcd.

use crate::subjects::DemoScript;

pub static SCRIPT: DemoScript = DemoScript {
    steps: [
        (
            "A healthy cluster",
            "Three etcd members replicate every write through Raft. The monitor asks each member for its status, its alarms and its metrics every second.",
        ),
        (
            "Load",
            "Clients write and read keys on every member. Each acknowledged write is recorded, so that a repair that loses data cannot pass for a good one.",
        ),
        (
            "A fault",
            "One member is killed, the way a crashed host would take it. The other two keep a majority and go on; nothing restarts the dead one.",
        ),
        (
            "Detection",
            "The monitor's next look finds the member down and opens a ticket.",
        ),
        (
            "The AI diagnoses",
            "The agent claims the ticket and investigates through the guarded shell: every command, etcdctl too, is checked by the policy first.",
        ),
        (
            "Recovery",
            "The agent starts the member again with its data: it rejoins and catches up from the leader. It checks its work with the monitor's own observation.",
        ),
        (
            "Verified health",
            "The agent's word closes nothing: the ticket is resolved when the monitor sees every member serve again.",
        ),
    ],
    ticket: "member_down",
    refused: "refused",
};
