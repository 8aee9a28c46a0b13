//! What a request's work carries with it: its in-flight permit, whether its client is still
//! there, and how long it may wait for the model. The work runs on a task of its own (so that a
//! panic is answered, not fatal), which outlives the connection when a client hangs up: the permit
//! goes with the work, so an abandoned batch still counts against the limit until it stops, and it
//! stops at the next text.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;

use crate::error::ApiError;

pub struct Ticket {
    _permit: Option<OwnedSemaphorePermit>,
    gone: Arc<AtomicBool>,
    arrived: Instant,
    max_wait: Option<Duration>,
}

/// Held by the connection's side of a request; dropping it (the client hung up, or the answer
/// went out) tells the work to stop.
pub struct ClientWatch(Arc<AtomicBool>);

impl Drop for ClientWatch {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Ticket {
    /// Work nobody can abandon or queue (the CLI; a Lambda invocation is one request at a time).
    pub fn unlimited() -> Self {
        Self { _permit: None, gone: Arc::default(), arrived: Instant::now(), max_wait: None }
    }

    /// Work for a client of the plain server: it holds `permit` until done, stops when the
    /// returned watch is dropped, and is shed if it waited longer than `max_wait` for the model.
    pub fn new(permit: OwnedSemaphorePermit, arrived: Instant, max_wait: Duration) -> (Self, ClientWatch) {
        let gone = Arc::new(AtomicBool::new(false));
        let ticket = Self { _permit: Some(permit), gone: gone.clone(), arrived, max_wait: Some(max_wait) };
        (ticket, ClientWatch(gone))
    }

    /// Before each text: the client is still there to read the answer.
    pub fn still_wanted(&self) -> Result<(), ApiError> {
        match self.gone.load(Ordering::Relaxed) {
            true => Err(ApiError::ClientGone),
            false => Ok(()),
        }
    }

    /// Once the model is free for this request: it did not wait past its deadline (and so is not
    /// shed). A batch that has started is not shed.
    pub fn waited_in_time(&self) -> Result<(), ApiError> {
        match self.max_wait {
            Some(max) if self.arrived.elapsed() > max => Err(ApiError::Overloaded(format!(
                "the request waited {:.1} s for the model (limit {:.0} s); shed, retry shortly",
                self.arrived.elapsed().as_secs_f64(),
                max.as_secs_f64()
            ))),
            _ => self.still_wanted(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::Semaphore;

    #[test]
    fn dropping_the_watch_stops_the_work_and_the_permit_lives_with_the_ticket() {
        let slots = Arc::new(Semaphore::new(1));
        let permit = slots.clone().try_acquire_owned().unwrap();
        let (ticket, watch) = Ticket::new(permit, Instant::now(), Duration::from_secs(60));
        assert!(ticket.waited_in_time().is_ok() && ticket.still_wanted().is_ok());
        drop(watch);
        assert_eq!(ticket.still_wanted(), Err(ApiError::ClientGone));
        assert_eq!(slots.available_permits(), 0, "the abandoned work still holds its slot");
        drop(ticket);
        assert_eq!(slots.available_permits(), 1);
    }

    #[test]
    fn a_request_that_waited_too_long_is_shed_but_a_started_one_is_not_stopped() {
        let slots = Arc::new(Semaphore::new(1));
        let long_ago = Instant::now() - Duration::from_secs(5);
        let (ticket, _watch) =
            Ticket::new(slots.try_acquire_owned().unwrap(), long_ago, Duration::from_secs(1));
        assert_eq!(ticket.waited_in_time().unwrap_err().code(), "overloaded");
        assert!(ticket.still_wanted().is_ok(), "a batch that has started finishes");
        assert!(Ticket::unlimited().waited_in_time().is_ok());
    }
}
