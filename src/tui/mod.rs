//! The terminal app: one full-screen program to watch, break and steer the cluster and its
//! agent. `App` is the state, `Msg` everything that happens, `update` the only place state
//! changes, `views` pure functions of the state; services are tokio tasks talking by
//! messages, so nothing on the UI path blocks.

pub mod app;
pub mod demo;
/// Screens of made-up data for the tests and benches; not in the binary.
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod keys;
pub mod msg;
pub mod services;
pub mod session_view;
pub mod theme;
pub mod update;
pub mod views;

use std::io::Write;

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use tokio::sync::mpsc;

use self::app::{App, Level};
use self::services::{Context, Services};
use self::theme::Theme;

/// Everything the app is started with.
pub struct Launch {
    pub ctx: Context,
    pub demo: bool,
    /// What the agent is, for the header (`runbook`, `anthropic claude-sonnet-5`).
    pub agent_label: String,
}

/// Leaves the terminal as it was: raw mode off, main screen back, mouse and paste off.
fn restore() {
    let _ = crossterm::execute!(
        std::io::stdout(),
        DisableMouseCapture,
        DisableBracketedPaste
    );
    ratatui::restore();
    let _ = std::io::stdout().flush();
}

/// Shows an error the app cannot start past (a DB it cannot open) in the app's own frame,
/// until the person presses q (or Esc, or Ctrl-C).
pub async fn show_error(title: &str, body: &str) -> std::io::Result<()> {
    use crossterm::event::{Event, EventStream};
    use futures::StreamExt;
    let mut terminal = ratatui::init();
    let mut app = App::new(
        "-",
        Vec::new(),
        0,
        crate::policy::Mode::Auto,
        Theme::from_env(),
        crate::clock::now(),
    );
    app.overlay = Some(app::Overlay::Fatal {
        title: format!(" {title} "),
        body: format!("{body}\n\nq or Ctrl-C: quit"),
    });
    let mut events = EventStream::new();
    let result = loop {
        let size = terminal.size()?;
        app.size = (size.width, size.height);
        terminal.draw(|f| views::draw(f, &app))?;
        match events.next().await {
            Some(Ok(Event::Key(k))) if keys::quits_a_fatal_screen(&k) => break Ok(()),
            Some(Err(e)) => break Err(e),
            None => break Ok(()),
            _ => {}
        }
    };
    ratatui::restore();
    result
}

/// Runs the app until the person quits (or SIGTERM).
pub async fn run(launch: Launch) -> std::io::Result<()> {
    let mut terminal = ratatui::init();
    // ratatui's panic hook restores raw mode and the screen; ours adds mouse and paste.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::execute!(
            std::io::stdout(),
            DisableMouseCapture,
            DisableBracketedPaste
        );
        previous(info);
    }));
    let _ = crossterm::execute!(std::io::stdout(), EnableMouseCapture, EnableBracketedPaste);
    let result = event_loop(&mut terminal, launch).await;
    restore();
    result
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    launch: Launch,
) -> std::io::Result<()> {
    let (tx, mut rx) = mpsc::channel(services::MSG_QUEUE);
    let ctx = launch.ctx;
    let mut app = App::new(
        &ctx.subject,
        crate::chaos::FaultKind::catalogue(ctx.kind.faults()),
        ctx.instance,
        ctx.agent.mode,
        Theme::from_env(),
        crate::clock::now(),
    );
    app.agent_label = launch.agent_label;
    app.invariants =
        match crate::subjects::registry::build(&ctx.subject, ctx.runtime.clone(), &ctx.config) {
            Ok(s) => s.invariants().to_vec(),
            Err(_) => Vec::new(),
        };
    // The subject was found in the registry when the app was launched.
    if let (true, Ok(kind)) = (launch.demo, crate::subjects::registry::kind(&ctx.subject)) {
        app.demo = Some(demo::Demo::new(kind.demo()));
    }
    let size = terminal.size()?;
    app.size = (size.width, size.height);
    let cluster_was_up = ctx.runtime.topology().is_ok();
    app.started_cluster = !cluster_was_up;
    let mut services = Services::new(ctx, tx.clone());
    services.terminal();
    services.clock_and_signals();
    services.start();
    app.push_log(Level::Info, "Operator started; press ? for keys");
    loop {
        terminal.draw(|f| views::draw(f, &app))?;
        let Some(first) = rx.recv().await else { break };
        // Take everything already waiting before drawing again: streams stay smooth.
        let mut batch = vec![first];
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        for msg in batch {
            for effect in update::update(&mut app, msg) {
                services.perform(effect);
            }
        }
        if app.exit {
            break;
        }
    }
    services.stop();
    Ok(())
}

#[cfg(test)]
mod tests;
