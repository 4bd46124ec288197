//! The guided demo's words for TiKV.

use crate::subjects::DemoScript;

pub static SCRIPT: DemoScript = DemoScript {
    steps: [
        (
            "A healthy cluster",
            "Three PD members keep the cluster's map and elect a leader; three TiKV stores hold every region three times. The monitor probes each store's status port and asks PD's leader for stores, regions and schedulers every second.",
        ),
        (
            "Load",
            "Clients would read and write keys through the stores; here the stores' own heartbeats to PD are the traffic the monitor watches.",
        ),
        (
            "A fault",
            "One store is killed, the way a crashed host would take it. Its regions lose a replica; nothing restarts it.",
        ),
        (
            "Detection",
            "The monitor's next look finds the store's status port dead and opens a ticket, without waiting the 20 s PD takes to call it Disconnected.",
        ),
        (
            "The AI diagnoses",
            "The agent claims the ticket and investigates through the guarded shell: PD's API and every other command are checked by the policy first.",
        ),
        (
            "Recovery",
            "The agent starts the store again with its data: it rejoins and its regions catch up. It checks its work with the monitor's own observation.",
        ),
        (
            "Verified health",
            "The agent's word closes nothing: the ticket is resolved when the monitor sees every store answer and PD hear it again.",
        ),
    ],
    ticket: "store_down",
    refused: "refused",
};
