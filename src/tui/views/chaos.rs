//! The Chaos tab: the fault catalogue, its targets, and the faults in effect.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Cell, List, ListItem, ListState, Paragraph, Row, Table, TableState, Wrap,
};

use crate::tui::app::{App, ChaosPane};

/// Lines under the fault list for the chosen fault's description.
const DESCRIPTION_LINES: u16 = 2;

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let th = app.theme;
    let rows = u16::try_from(app.catalogue.len()).unwrap_or(u16::MAX);
    // The list, then the chosen fault's whole description under it (the list cuts them).
    let [top, active] = Layout::vertical([
        Constraint::Length(rows + 2 + DESCRIPTION_LINES),
        Constraint::Min(4),
    ])
    .areas(area);
    let targets_w = app
        .targets()
        .iter()
        .map(|t| t.chars().count())
        .fold(12, usize::max)
        + 1
        + "unresponsive".len()
        + 2;
    let [faults, targets] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(u16::try_from(targets_w).unwrap_or(u16::MAX)),
    ])
    .areas(top);
    let border = |pane: ChaosPane| {
        if app.chaos_pane == pane {
            th.title()
        } else {
            th.dim()
        }
    };

    let block = Block::bordered()
        .title(" Fault ")
        .border_style(border(ChaosPane::Faults));
    let inner = block.inner(faults);
    f.render_widget(block, faults);
    let [list_area, about] = Layout::vertical([
        Constraint::Length(rows),
        Constraint::Length(DESCRIPTION_LINES),
    ])
    .areas(inner);
    let name_w = app
        .catalogue
        .iter()
        .map(|k| k.as_str().len())
        .max()
        .unwrap_or(0)
        + 1;
    let desc_w = usize::from(inner.width).saturating_sub(name_w);
    let items: Vec<ListItem> = app
        .catalogue
        .iter()
        .map(|k| {
            ListItem::new(Line::from(vec![
                Span::styled(format!("{:<name_w$}", k.as_str()), th.bold()),
                Span::styled(super::cut(k.description(), desc_w), th.dim()),
            ]))
        })
        .collect();
    let list = List::new(items).highlight_style(th.selected());
    f.render_stateful_widget(
        list,
        list_area,
        &mut ListState::default().with_selected(Some(app.fault_sel)),
    );
    let chosen = app.catalogue[app.fault_sel.min(app.catalogue.len().saturating_sub(1))];
    f.render_widget(
        Paragraph::new(Span::styled(
            format!("{}: {}", chosen.as_str(), chosen.description()),
            th.plain(),
        ))
        .wrap(Wrap { trim: true }),
        about,
    );

    let snap = app.cycle.as_ref().and_then(|c| c.snapshot.as_ref());
    let nodes: Vec<ListItem> = snap
        .map(|s| {
            s.observation
                .nodes
                .iter()
                .map(|n| {
                    ListItem::new(Line::from(vec![
                        Span::raw(format!("{:<15}", n.name)),
                        Span::styled(n.state.as_str(), th.node(n.state)),
                    ]))
                })
                .collect()
        })
        .unwrap_or_default();
    let list = List::new(nodes)
        .block(
            Block::bordered()
                .title(" Target ")
                .border_style(border(ChaosPane::Targets)),
        )
        .highlight_style(th.selected());
    f.render_stateful_widget(
        list,
        targets,
        &mut ListState::default().with_selected(Some(app.target_sel)),
    );

    let live: Vec<_> = app.faults.iter().filter(|x| x.status.is_live()).collect();
    let block = Block::bordered()
        .title(format!(
            " In effect · {} (i injects · h heals · H heals all) ",
            live.len()
        ))
        .border_style(border(ChaosPane::Active));
    if live.is_empty() {
        f.render_widget(
            Paragraph::new(Span::styled("no fault in effect", th.dim())).block(block),
            active,
        );
        return;
    }
    let rows = live.iter().map(|x| {
        let left = x.expires_at.map_or("until healed".to_string(), |e| {
            let s = (e - app.now).num_seconds().max(0);
            format!("{s}s left")
        });
        Row::new(vec![
            Cell::from(format!("#{}", x.id)),
            Cell::from(x.fault.as_str()).style(th.bad()),
            Cell::from(x.target.clone()),
            Cell::from(x.status.as_str()),
            Cell::from(left).style(th.dim()),
            Cell::from(format!("by {}", x.injected_by)).style(th.dim()),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(5),
            Constraint::Length(10),
            Constraint::Length(15),
            Constraint::Length(10),
            Constraint::Length(14),
            Constraint::Min(6),
        ],
    )
    .header(Row::new(["id", "fault", "target", "status", "time left", "by"]).style(th.bold()))
    .row_highlight_style(th.selected())
    .block(block);
    f.render_stateful_widget(
        table,
        active,
        &mut TableState::default().with_selected(Some(app.active_sel)),
    );
}
