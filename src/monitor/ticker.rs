//! The monitor's beat. tokio's timer wheel keeps a deadline a second away in a coarse slot and
//! wakes the thread twice to reach it: once when the slot comes round, once at the deadline.
//! On a virtual machine each wake-up of an idle process costs some 40 µs of CPU, a good part
//! of a healthy cycle, so the beat is a timerfd, which wakes the thread once, at the deadline.
//! Where no timerfd can be made, tokio's interval beats instead.

use std::os::fd::AsFd;
use std::time::Duration;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;
use tokio::time::{Interval, MissedTickBehavior};
use tracing::debug;

use crate::readable::{self, Readable};

type Timer = Readable<TimerFd>;

enum Beat {
    Timer(AsyncFd<Timer>),
    Tokio(Interval),
}

/// Beats every `period`, the first at once; a beat missed (a slow cycle) is not made up.
pub struct Ticker {
    beat: Beat,
    period: Duration,
}

impl Ticker {
    pub fn new(period: Duration) -> Self {
        let beat = match timer(period) {
            Ok(fd) => Beat::Timer(fd),
            Err(e) => {
                debug!(error = %e, "no timerfd; beating with tokio's interval");
                let mut i = tokio::time::interval(period);
                i.set_missed_tick_behavior(MissedTickBehavior::Delay);
                Beat::Tokio(i)
            }
        };
        Self { beat, period }
    }

    /// Waits for the next beat.
    pub async fn tick(&mut self) {
        match &mut self.beat {
            Beat::Tokio(i) => {
                i.tick().await;
            }
            Beat::Timer(fd) => loop {
                let Ok(mut ready) = fd.readable().await else {
                    // The reactor is gone (the runtime shutting down): no more beats.
                    return std::future::pending().await;
                };
                match ready.try_io(|t| expiries(t.get_ref()).map_err(Into::into)) {
                    Ok(Ok(1)) => break,
                    // Beats missed (a slow cycle) make one, and the next is a whole period
                    // later, as with tokio's `MissedTickBehavior::Delay`.
                    Ok(Ok(_)) => {
                        if let Err(e) = arm(fd.get_ref(), self.period) {
                            debug!(error = %e, "re-arming the timerfd");
                        }
                        break;
                    }
                    Ok(Err(e)) => {
                        debug!(error = %e, "reading the timerfd; beating with tokio's interval");
                        let mut i = tokio::time::interval_at(
                            tokio::time::Instant::now() + self.period,
                            self.period,
                        );
                        i.set_missed_tick_behavior(MissedTickBehavior::Delay);
                        self.beat = Beat::Tokio(i);
                        return;
                    }
                    Err(_would_block) => {}
                }
            },
        }
    }

    /// Starts the beat again: the next one a whole period from now.
    pub fn reset(&mut self) {
        match &mut self.beat {
            Beat::Tokio(i) => i.reset(),
            Beat::Timer(fd) => {
                // Setting the timer again also clears the expiries not read yet.
                if let Err(e) = arm(fd.get_ref(), self.period) {
                    debug!(error = %e, "re-arming the timerfd");
                }
            }
        }
    }
}

fn timer(period: Duration) -> std::io::Result<AsyncFd<Timer>> {
    let fd = TimerFd::new(
        ClockId::CLOCK_MONOTONIC,
        TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
    )?;
    // The first beat at once (a zero delay would disarm it), as tokio's interval's.
    let at_once = TimeSpec::from_duration(Duration::from_nanos(1));
    fd.set(
        Expiration::IntervalDelayed(at_once, TimeSpec::from_duration(period)),
        TimerSetTimeFlags::empty(),
    )?;
    readable::register(fd)
}

/// The expiries since the last read; `EAGAIN` when there was none.
fn expiries(timer: &Timer) -> nix::Result<u64> {
    let mut count = [0u8; 8];
    nix::unistd::read(timer.0.as_fd(), &mut count)?;
    Ok(u64::from_ne_bytes(count))
}

/// Every `period` from now on.
fn arm(timer: &Timer, period: Duration) -> std::io::Result<()> {
    let period = TimeSpec::from_duration(period);
    timer
        .0
        .set(Expiration::Interval(period), TimerSetTimeFlags::empty())
        .map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn beats_at_once_then_every_period_and_a_reset_starts_again() {
        let period = Duration::from_millis(200);
        let start = Instant::now();
        let mut t = Ticker::new(period);
        assert!(matches!(t.beat, Beat::Timer(_)), "this Linux has timerfds");
        t.tick().await;
        assert!(start.elapsed() < period, "the first beat is at once");
        t.tick().await;
        t.tick().await;
        let two = start.elapsed();
        assert!(two >= period * 2, "two periods took {two:?}");
        // A slow cycle: the beats it missed make one beat at once, and the next comes a
        // whole period after it, not in a burst.
        std::thread::sleep(period * 3);
        let late = Instant::now();
        t.tick().await;
        assert!(late.elapsed() < period, "the missed beat waited");
        t.tick().await;
        assert!(late.elapsed() >= period, "missed beats came as a burst");
        // Reset: a whole period from now, even if a beat was due.
        std::thread::sleep(period * 2);
        let reset = Instant::now();
        t.reset();
        t.tick().await;
        assert!(reset.elapsed() >= period, "a reset beat came early");
    }
}
