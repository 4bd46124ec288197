//! The commands that act on nodes where an agent's commands run, in the runtime's own terms:
//! `operator node …` on this machine, `docker …` in the Docker runtime's toolbox (through the
//! operator's filtering proxy). Subjects name these in their context and runbooks; they
//! never spell a runtime's verbs themselves.

use serde_json::json;

/// Each takes a node name after it, but `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commands {
    pub status: &'static str,
    pub logs: &'static str,
    pub start: &'static str,
    pub resume: &'static str,
    pub restart: &'static str,
    pub stop: &'static str,
    pub kill: &'static str,
    pub pause: &'static str,
    /// Re-makes a node from empty, the subject's way (`operator node reset`); empty where
    /// the agent's commands cannot.
    pub reset: &'static str,
    /// Runs a program inside a node's own filesystem (`docker exec NODE`); empty where the
    /// agent's commands already run beside the nodes.
    pub exec: &'static str,
}

impl Commands {
    pub fn for_runtime(runtime: &str) -> Self {
        match runtime {
            "docker" => Self {
                status: "docker ps -a",
                logs: "docker logs --tail 20",
                start: "docker start",
                resume: "docker unpause",
                restart: "docker restart",
                stop: "docker stop",
                kill: "docker kill",
                pause: "docker pause",
                // None in the toolbox: through the proxy a node's container can be started,
                // never made anew; a subject that needs a node re-made does it its own way.
                reset: "",
                exec: "docker exec",
            },
            _ => Self {
                status: "operator status",
                logs: "operator node logs -n 20",
                start: "operator node start",
                resume: "operator node resume",
                restart: "operator node restart",
                stop: "operator node stop",
                kill: "operator node kill",
                pause: "operator node pause",
                reset: "operator node reset",
                exec: "",
            },
        }
    }

    /// How to run `program` in `node`'s filesystem.
    pub fn in_node(&self, node: &str, program: &str) -> String {
        if self.exec.is_empty() {
            program.to_string()
        } else {
            format!("{} {node} {program}", self.exec)
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "status": self.status,
            "logs": self.logs,
            "start": self.start,
            "resume": self.resume,
            "restart": self.restart,
            "stop": self.stop,
            "kill": self.kill,
            "pause": self.pause,
            "reset": self.reset,
            "exec": self.exec,
        })
    }
}

/// A node's address as the agent's commands reach it: by name inside the toolbox, else as
/// the operator reaches it.
pub fn reach(t: &super::Topology, n: &super::TopologyNode) -> String {
    if t.runtime == "docker" {
        n.advertised_address().to_string()
    } else {
        n.address.clone()
    }
}
