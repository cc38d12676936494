//! The loaded AWS configuration ([`AwsSession`]: region, credentials with a bounded
//! resolution, RDS client, API errors) and RDS IAM auth tokens.

use std::time::{Duration, SystemTime};

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_rds::auth_token::{AuthTokenGenerator, Config as AuthTokenConfig};
use aws_sdk_rds::config::{Credentials, ProvideCredentials};
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use std::fmt;

use super::LABEL_ENDPOINT;
use super::source::RdsSource;
use crate::{Instance, Secret, TopologyError};

/// How long resolving AWS credentials may take before giving up.
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(30);
/// Refresh cached credentials this long before they expire.
const CREDENTIALS_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Loaded AWS configuration (region, credentials, endpoint) for one [`RdsSource`]. Opaque: load it
/// once with [`AwsSession::load`] and reuse it for discovery and IAM tokens. Its `Debug` shows
/// the profile and region only.
pub struct AwsSession {
    sdk: SdkConfig,
    pub(super) profile: Option<String>,
    pub(super) region: String,
    endpoint_overridden: bool,
    credentials: tokio::sync::Mutex<Option<Credentials>>,
}

impl fmt::Debug for AwsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsSession")
            .field("profile", &self.profile)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl AwsSession {
    /// Load the AWS configuration for `source`: named profile, region, endpoint override. Fails
    /// with [`TopologyError::AwsNoRegion`] or [`TopologyError::AwsNoCredentials`] (within about
    /// 30 s at worst) when either cannot be found. Makes no RDS API call.
    pub async fn load(source: &RdsSource) -> Result<AwsSession, TopologyError> {
        source.validate()?;
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(30))
            .operation_attempt_timeout(Duration::from_secs(60))
            .operation_timeout(Duration::from_secs(180))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
        if let Some(profile) = &source.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &source.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &source.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let sdk = tokio::time::timeout(CREDENTIALS_TIMEOUT, loader.load())
            .await
            .map_err(|_| TopologyError::AwsNoRegion {
                profile: source.profile.clone(),
            })?;
        let region = sdk
            .region()
            .map(|r| r.as_ref().to_string())
            .filter(|r| !r.is_empty());
        let session = AwsSession {
            sdk,
            profile: source.profile.clone(),
            region: region.clone().unwrap_or_default(),
            endpoint_overridden: source.endpoint_url.is_some(),
            credentials: tokio::sync::Mutex::new(None),
        };
        if region.is_none() && source.profile.is_none() {
            return Err(TopologyError::AwsNoRegion { profile: None });
        }
        // Resolve credentials now, so a missing key is reported before any API call. Without a
        // region, a named profile that does not exist is the likelier cause: report that first.
        let credentials = session.credentials().await;
        match (region, credentials) {
            (Some(_), Ok(_)) => Ok(session),
            (Some(_), Err(e)) => Err(e),
            (None, Err(e @ TopologyError::AwsNoCredentials { .. }))
                if source.profile.is_some() && e.to_string().contains("is not defined") =>
            {
                Err(e)
            }
            (None, _) => Err(TopologyError::AwsNoRegion {
                profile: source.profile.clone(),
            }),
        }
    }

    /// The region in use.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The named profile in use, if one was given.
    pub fn profile(&self) -> Option<&str> {
        self.profile.as_deref()
    }

    /// Current credentials, resolved once and refreshed shortly before they expire.
    async fn credentials(&self) -> Result<Credentials, TopologyError> {
        let mut cached = self.credentials.lock().await;
        if let Some(creds) = cached.as_ref() {
            let fresh = match creds.expiry() {
                None => true,
                Some(expiry) => expiry
                    .duration_since(SystemTime::now())
                    .is_ok_and(|left| left > CREDENTIALS_REFRESH_MARGIN),
            };
            if fresh {
                return Ok(creds.clone());
            }
        }
        let no_creds = |reason: String| TopologyError::AwsNoCredentials {
            profile: self.profile.clone(),
            reason,
        };
        let provider = self
            .sdk
            .credentials_provider()
            .ok_or_else(|| no_creds("no credentials provider is configured".to_string()))?;
        let creds = tokio::time::timeout(CREDENTIALS_TIMEOUT, provider.provide_credentials())
            .await
            .map_err(|_| {
                no_creds(format!(
                    "resolving credentials timed out after {} s (outside EC2, set \
                     AWS_EC2_METADATA_DISABLED=true so the instance metadata service is not tried)",
                    CREDENTIALS_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| no_creds(credentials_reason(&e, self.profile.as_deref())))?;
        *cached = Some(creds.clone());
        Ok(creds)
    }

    pub(super) fn client(&self) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.sdk)
    }

    pub(super) fn api_error<E>(&self, operation: &str, err: &SdkError<E>) -> TopologyError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let message = match err {
            SdkError::ServiceError(service) => {
                let e = service.err();
                let code = e.code().unwrap_or("error");
                let mut m = format!("{code}: {}", e.message().unwrap_or("(no message)"));
                let lower = code.to_ascii_lowercase();
                if lower.contains("accessdenied") || lower.contains("unauthorized") {
                    m.push_str(
                        "; the credentials need rds:DescribeDBClusters and rds:DescribeDBInstances \
                         (check --aws-profile)",
                    );
                } else if lower.contains("signature") || lower.contains("token") {
                    m.push_str("; check the credentials of --aws-profile (expired SSO session? run `aws sso login`)");
                }
                m
            }
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => format!(
                "{}; check network access to the RDS API endpoint{}",
                error_chain(err),
                if self.endpoint_overridden {
                    " (the endpoint URL override)"
                } else {
                    " and --aws-region"
                }
            ),
            _ => error_chain(err),
        };
        TopologyError::AwsApi {
            operation: operation.to_string(),
            region: self.region.clone(),
            message,
        }
    }
}

/// A short reason for a credential chain failure (the chain's own message lists every provider).
fn credentials_reason(err: &(dyn std::error::Error + 'static), profile: Option<&str>) -> String {
    let full = error_chain(err);
    if let Some(p) = profile
        && full.contains(&format!("profile `{p}` was not defined"))
    {
        return format!(
            "profile `{p}` is not defined in the AWS config or credentials file (~/.aws/config, \
             ~/.aws/credentials, or AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE)"
        );
    }
    if full.contains("no credentials found in chain") {
        let mut reason =
            "none found in the environment, the profile files, web identity, ECS or EC2 \
                          instance metadata"
                .to_string();
        if full.contains("IMDS disabled") {
            reason.push_str(" (instance metadata disabled by AWS_EC2_METADATA_DISABLED)");
        }
        return reason;
    }
    full
}

/// `outer: inner: innermost` from an error and its sources, without repeats, on one line.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        let text = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// Generate an RDS IAM auth token for `user` at the RDS endpoint `host:port` (the endpoint AWS
/// reports, not a tunnel). A local SigV4 presign with the session's credentials and region (no
/// network call); valid for 15 minutes for opening connections. The token is a [`Secret`]: never
/// log it.
pub async fn iam_auth_token(
    session: &AwsSession,
    host: &str,
    port: u16,
    user: &str,
) -> Result<Secret, TopologyError> {
    let fail = |reason: String| TopologyError::AwsIamToken {
        endpoint: format!("{host}:{port}"),
        user: user.to_string(),
        reason,
    };
    if host.is_empty() || user.is_empty() {
        return Err(fail("host and user must not be empty".to_string()));
    }
    let creds = session.credentials().await?;
    let config = AuthTokenConfig::builder()
        .hostname(host)
        .port(u64::from(port))
        .username(user)
        .region(Region::new(session.region.clone()))
        .credentials(creds)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let token = AuthTokenGenerator::new(config)
        .auth_token(&session.sdk)
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(Secret::new(token.as_str()))
}

/// Fill [`ConnectionSpec::password`](crate::ConnectionSpec::password) with a fresh IAM auth token for every instance whose
/// connection has `iam_auth` set; call it right before connecting (tokens last 15 minutes).
/// Loads an [`AwsSession`] from `source` only when some instance needs a token. Returns the
/// number of tokens generated.
pub async fn resolve_iam_passwords(
    instances: &mut [Instance],
    source: &RdsSource,
) -> Result<usize, TopologyError> {
    if !instances.iter().any(|i| i.connection.iam_auth) {
        return Ok(0);
    }
    let session = AwsSession::load(source).await?;
    resolve_iam_passwords_with(&session, instances).await
}

/// [`resolve_iam_passwords`] with an already loaded session. The token is signed for the
/// instance's `rds:endpoint` label when present (so it stays valid through an endpoint mapping),
/// else for the connection's host and port.
pub async fn resolve_iam_passwords_with(
    session: &AwsSession,
    instances: &mut [Instance],
) -> Result<usize, TopologyError> {
    let mut n = 0;
    for instance in instances.iter_mut().filter(|i| i.connection.iam_auth) {
        let (host, port) = instance
            .labels
            .get(LABEL_ENDPOINT)
            .and_then(|e| {
                let (h, p) = e.rsplit_once(':')?;
                Some((h.to_string(), p.parse::<u16>().ok()?))
            })
            .unwrap_or_else(|| (instance.connection.host.clone(), instance.connection.port));
        let token = iam_auth_token(session, &host, port, &instance.connection.user).await?;
        instance.connection.password = Some(token);
        n += 1;
    }
    Ok(n)
}
