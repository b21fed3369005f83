use std::time::Duration;

use rand::Rng;

/// Retries transient failures only, with capped exponential backoff and full jitter.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(50),
            cap: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(16));
        let ceiling = exp.min(self.cap);
        let jitter = rand::rng().random_range(0..=ceiling.as_millis() as u64);
        Duration::from_millis(jitter.max(1))
    }
}

/// How long the store waits. Connection strings set them in milliseconds:
/// `?connectTimeout=`, `?requestTimeout=`, `?operationTimeout=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing a connection (S3 backends).
    pub connect: Duration,
    /// One attempt of one request, response body included.
    pub request: Duration,
    /// One operation, every retry and backoff included.
    pub operation: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(15),
            operation: Duration::from_secs(30),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_is_capped() {
        let p = RetryPolicy::default();
        for attempt in 0..40 {
            assert!(p.delay(attempt) <= p.cap);
        }
    }
}
