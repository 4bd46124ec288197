//! Colours, or none: `NO_COLOR` keeps the modifiers (bold, reverse) and drops every colour.

use ratatui::style::{Color, Modifier, Style};

use crate::invariant::Severity;
use crate::policy::Class;
use crate::runtime::RunState;
use crate::subjects::NodeState;
use crate::tickets::Status;

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn from_env() -> Self {
        Self {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    pub fn plain(&self) -> Style {
        Style::new()
    }

    pub fn dim(&self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }

    pub fn bold(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn title(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn selected(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub fn good(&self) -> Style {
        self.fg(Color::Green)
    }

    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow)
    }

    pub fn bad(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn accent(&self) -> Style {
        self.fg(Color::Magenta)
    }

    pub fn node(&self, s: NodeState) -> Style {
        match s {
            NodeState::Up => self.good(),
            NodeState::Degraded => self.warn(),
            NodeState::Down | NodeState::Unresponsive => self.bad(),
        }
    }

    pub fn run_state(&self, s: RunState) -> Style {
        match s {
            RunState::Running => self.good(),
            RunState::Paused => self.warn(),
            RunState::Exited => self.bad(),
        }
    }

    pub fn severity(&self, s: Severity) -> Style {
        match s {
            Severity::Critical => self.bad(),
            Severity::Warning => self.warn(),
            Severity::Info => self.plain(),
        }
    }

    pub fn status(&self, s: Status) -> Style {
        match s {
            Status::Open => self.bad(),
            Status::InProgress => self.warn(),
            Status::Verifying => self.accent(),
            Status::Resolved => self.good(),
            Status::Escalated => self.fg(Color::LightRed).add_modifier(Modifier::BOLD),
        }
    }

    pub fn class(&self, c: Class) -> Style {
        match c {
            Class::ReadOnly => self.good(),
            Class::Mutating => self.warn(),
            Class::Destructive => self.bad(),
            Class::Denied => self.fg(Color::LightRed).add_modifier(Modifier::CROSSED_OUT),
        }
    }
}
