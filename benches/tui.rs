//! Render time of each tab with a large state: 500 tickets and an agent session of about
//! 10 000 lines, into a 160×50 test terminal.

use criterion::{Criterion, criterion_group, criterion_main};
use operator::tui::app::{Overlay, Tab};
use operator::tui::{fixtures, views};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn bench(c: &mut Criterion) {
    let mut app = fixtures::big(500, 10_000);
    app.size = (160, 50);
    let mut term = Terminal::new(TestBackend::new(160, 50)).unwrap();
    let mut g = c.benchmark_group("tui_render");
    for tab in Tab::ALL {
        app.tab = tab;
        g.bench_function(tab.title().to_lowercase(), |b| {
            b.iter(|| {
                term.draw(|f| views::draw(f, &app)).unwrap();
            })
        });
    }
    app.tab = Tab::Cluster;
    app.overlay = Some(Overlay::Help);
    g.bench_function("help", |b| {
        b.iter(|| {
            term.draw(|f| views::draw(f, &app)).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
