//! A shadow that is still starting when the run begins: the caller (the pipeline) starts its
//! ephemeral shadow cluster beside the introspection and the probes, and the rehearsal waits
//! for it only when it needs it — so the shadow's `initdb` on a first run on a machine is not
//! on the probes' critical path.

use topology::ConnectionSpec;

use crate::estimate::Throughput;

/// What the starter of a pending shadow hands to the run once the shadow is up (or failed).
#[derive(Debug, Clone, Default)]
pub struct ReadyShadow {
    /// The shadow (an ephemeral cluster the caller started: [`crate::SimOptions::shadow_is_ephemeral`]
    /// applies); `None` when it could not be started — the rehearsal then tries on its own and
    /// reports it.
    pub spec: Option<ConnectionSpec>,
    /// Throughput figures to use (a cached calibration); `None` keeps the run's options.
    /// Only with a `spec`.
    pub throughput: Option<Throughput>,
    /// Calibrate on the shadow during the run. `false` when the caller calibrates itself
    /// (before, or after the run: [`crate::re_estimate`]). Only with a `spec`: without one the
    /// run's own options decide.
    pub calibrate: bool,
}

/// The run's side of a pending shadow ([`crate::SimOptions::shadow_pending`]).
#[derive(Debug, Clone)]
pub struct PendingShadow(tokio::sync::watch::Receiver<Option<ReadyShadow>>);

/// The starter's side: [`ShadowStarter::ready`] once, when the shadow is up or failed.
#[derive(Debug)]
pub struct ShadowStarter(tokio::sync::watch::Sender<Option<ReadyShadow>>);

impl PendingShadow {
    /// A pending shadow and the handle that completes it.
    pub fn channel() -> (ShadowStarter, PendingShadow) {
        let (tx, rx) = tokio::sync::watch::channel(None);
        (ShadowStarter(tx), PendingShadow(rx))
    }

    /// Wait until the shadow is ready. A starter dropped without saying anything counts as
    /// a shadow that could not be started.
    pub async fn wait(&self) -> ReadyShadow {
        let mut rx = self.0.clone();
        // `Err` only when the starter is gone without having sent anything.
        let got = rx.wait_for(Option::is_some).await.map(|v| v.clone());
        got.ok().flatten().unwrap_or_default()
    }
}

impl ShadowStarter {
    /// The shadow is ready (or failed: `spec: None`); wakes every waiter.
    pub fn ready(&self, shadow: ReadyShadow) {
        self.0.send_replace(Some(shadow));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_get_what_the_starter_sent_and_a_dropped_starter_means_failed() {
        let (tx, rx) = PendingShadow::channel();
        let waiter = tokio::spawn({
            let rx = rx.clone();
            async move { rx.wait().await }
        });
        tx.ready(ReadyShadow {
            spec: None,
            throughput: Some(Throughput::default()),
            calibrate: true,
        });
        let got = waiter.await.unwrap();
        assert!(got.calibrate && got.throughput.is_some());
        // After the fact too.
        assert!(rx.wait().await.calibrate);

        let (tx, rx) = PendingShadow::channel();
        drop(tx);
        let got = rx.wait().await;
        assert!(got.spec.is_none() && !got.calibrate);
    }
}
