//! The AWS RDS flags shared by `validate-migration` and `topology discover`.

use clap::Args;
use deployclaw::fleet_source::FleetTarget;

/// Flags that apply when `--target-db` names an RDS cluster or instance.
#[derive(Debug, Args)]
pub struct AwsArgs {
    /// AWS profile for RDS discovery and IAM tokens.
    #[arg(long)]
    pub aws_profile: Option<String>,
    /// AWS region (overrides the profile's and an ARN's region).
    #[arg(long)]
    pub aws_region: Option<String>,
    /// AWS endpoint override (VPC endpoint, emulator).
    #[arg(long)]
    pub aws_endpoint_url: Option<String>,
    /// Map an RDS endpoint to a reachable address: `FROM=HOST:PORT` (repeatable).
    #[arg(long = "rds-endpoint-map")]
    pub rds_endpoint_map: Vec<String>,
    /// Connect to RDS with IAM auth tokens.
    #[arg(long)]
    pub aws_iam_auth: bool,
    /// Database user for RDS instances.
    #[arg(long)]
    pub db_user: Option<String>,
    /// Database name for RDS instances.
    #[arg(long)]
    pub db_name: Option<String>,
}

impl AwsArgs {
    /// Apply the flags to an RDS target; other targets are left as they are.
    #[cfg_attr(not(feature = "aws"), allow(unused_variables))]
    pub fn apply(&self, target: &mut FleetTarget) -> Result<(), topology::TopologyError> {
        #[cfg(feature = "aws")]
        if let FleetTarget::Rds(src) = target {
            src.profile = self.aws_profile.clone();
            if self.aws_region.is_some() {
                src.region = self.aws_region.clone();
            }
            src.endpoint_url = self.aws_endpoint_url.clone();
            src.iam_auth = self.aws_iam_auth;
            src.user = self.db_user.clone();
            src.database = self.db_name.clone();
            for m in &self.rds_endpoint_map {
                src.add_endpoint_mapping(m)?;
            }
        }
        Ok(())
    }
}
