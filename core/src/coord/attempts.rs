//! Bounded retry loops: every loop that waits on the store ends, with a typed error that says
//! what kept failing.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, ErrorKind, Result};

/// At most `max` attempts within `within`, with jittered pauses growing to 100 ms between.
#[derive(Debug)]
pub struct Attempts {
    what: String,
    made: u32,
    max: u32,
    deadline: Instant,
}

impl Attempts {
    pub fn new(what: impl Into<String>, max: u32, within: Duration) -> Attempts {
        Attempts {
            what: what.into(),
            made: 0,
            max,
            deadline: Instant::now() + within,
        }
    }

    /// Attempts made so far that failed.
    pub fn failed(&self) -> u32 {
        self.made
    }

    /// Records a failed attempt (`why`), pauses, and returns `Err(kind)` once the attempts
    /// or the time are used up.
    pub async fn failed_because(&mut self, kind: ErrorKind, why: &str) -> Result<()> {
        self.made += 1;
        let now = Instant::now();
        if self.made >= self.max || now >= self.deadline {
            return Err(Error::new(
                kind,
                format!("{}: gave up after {} attempts: {why}", self.what, self.made),
            ));
        }
        let cap = (10u64 << self.made.min(4)).min(100);
        let pause = Duration::from_millis(rand::random_range(1..=cap));
        tokio::time::sleep(pause.min(self.deadline - now)).await;
        Ok(())
    }
}

/// A store's answers that cannot both be true, in a row: 404 to reading an object, then 412
/// to creating it. A real race loses such a create once; a store that keeps doing it is broken.
#[derive(Debug)]
pub struct Contradictions {
    what: String,
    in_a_row: u32,
}

const CONTRADICTIONS_TOLERATED: u32 = 10;

impl Contradictions {
    pub fn new(what: impl Into<String>) -> Contradictions {
        Contradictions {
            what: what.into(),
            in_a_row: 0,
        }
    }

    /// After a lost write: `create_after_404` says the write was a create following a 404.
    pub fn lost_write(&mut self, create_after_404: bool) -> Result<()> {
        self.in_a_row = if create_after_404 {
            self.in_a_row + 1
        } else {
            0
        };
        if self.in_a_row >= CONTRADICTIONS_TOLERATED {
            return Err(Error::new(
                ErrorKind::Storage,
                format!(
                    "{}: the store answered 404 to reading it and 412 to creating it, {} times in a row",
                    self.what, self.in_a_row
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ends_after_the_last_attempt_with_the_reason() {
        let mut a = Attempts::new("reading x", 3, Duration::from_secs(10));
        a.failed_because(ErrorKind::Storage, "404").await.unwrap();
        a.failed_because(ErrorKind::Storage, "404").await.unwrap();
        let e = a
            .failed_because(ErrorKind::Storage, "404 then 412")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage);
        assert_eq!(
            e.message(),
            "reading x: gave up after 3 attempts: 404 then 412"
        );
    }

    #[tokio::test]
    async fn ends_at_the_deadline() {
        let mut a = Attempts::new("x", 1000, Duration::from_millis(30));
        let t0 = Instant::now();
        let mut n = 0;
        while a.failed_because(ErrorKind::Conflict, "busy").await.is_ok() {
            n += 1;
        }
        assert!(n < 1000);
        assert!(t0.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_create_lost_after_a_404_ten_times_in_a_row_is_a_broken_store() {
        let mut c = Contradictions::new("sequence x");
        for _ in 0..9 {
            c.lost_write(true).unwrap();
        }
        c.lost_write(false).unwrap();
        for _ in 0..9 {
            c.lost_write(true).unwrap();
        }
        let e = c.lost_write(true).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage);
        assert!(e.message().contains("10 times in a row"), "{e}");
    }
}
