//! `recourse serve --oidc-*`: sign-in for people with ID tokens from the
//! institution's identity provider (`recourse_gate::oidc`). Without
//! `--oidc-issuer` the gate accepts bearer tokens only.

use clap::Args;
use recourse_gate::oidc::{OidcConfig, RoleMapping};

#[derive(Args, Debug, Clone)]
pub struct OidcArgs {
    /// The identity provider's issuer URL, exactly as its ID tokens' `iss`
    /// (its keys are discovered from ISSUER/.well-known/openid-configuration).
    /// https; http only on a loopback address (tests). With it, the gate
    /// accepts ID tokens as bearers beside its own tokens.
    #[arg(long, env = "RECOURSE_OIDC_ISSUER", value_name = "URL")]
    pub oidc_issuer: Option<String>,
    /// The client id ID tokens must be issued to (`aud`).
    #[arg(long, env = "RECOURSE_OIDC_AUDIENCE", value_name = "ID")]
    pub oidc_audience: Option<String>,
    /// The claim carrying the groups or roles `--oidc-role` matches.
    #[arg(long, value_name = "NAME", default_value = OidcConfig::DEFAULT_ROLE_CLAIM)]
    pub oidc_role_claim: String,
    /// VALUE=ROLE: a person whose role claim holds VALUE gets ROLE (agent,
    /// reviewer, risk_officer, incident_lead, admin). Repeatable; the first
    /// mapping (in the order given) whose value the token holds wins. A
    /// token that no mapping matches is refused (403).
    #[arg(long, value_name = "VALUE=ROLE")]
    pub oidc_role: Vec<String>,
    /// The claim naming the person (shown as `oidc:NAME` in the audit
    /// trail). Default: `email`, then `preferred_username`, then `sub`.
    #[arg(long, value_name = "NAME")]
    pub oidc_name_claim: Option<String>,
    /// The least seconds between two fetches of the provider's keys: a
    /// token naming an unknown key (`kid`) makes the gate fetch them again
    /// (the provider rotated), but not more often than this, so a flood of
    /// forged kids cannot make the gate hammer the provider.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub oidc_key_refresh_s: u64,
}

impl OidcArgs {
    /// The gate's configuration, `None` without `--oidc-issuer`; a half
    /// configuration refused naming the flag that is missing.
    pub fn config(&self) -> anyhow::Result<Option<OidcConfig>> {
        let Some(issuer) = &self.oidc_issuer else {
            let given = if self.oidc_audience.is_some() {
                Some("--oidc-audience")
            } else if !self.oidc_role.is_empty() {
                Some("--oidc-role")
            } else {
                None
            };
            if let Some(flag) = given {
                anyhow::bail!(
                    "{flag} needs --oidc-issuer (the identity provider whose ID tokens the gate accepts)"
                );
            }
            return Ok(None);
        };
        let Some(audience) = &self.oidc_audience else {
            anyhow::bail!(
                "--oidc-issuer needs --oidc-audience (the client id the gate's ID tokens are issued to)"
            );
        };
        if self.oidc_role.is_empty() {
            anyhow::bail!(
                "--oidc-issuer needs at least one --oidc-role VALUE=ROLE (without one, nobody could sign in)"
            );
        }
        let mut config = OidcConfig::new(issuer, audience);
        config.role_claim = self.oidc_role_claim.clone();
        config.roles = self
            .oidc_role
            .iter()
            .map(|m| RoleMapping::parse(m))
            .collect::<Result<_, _>>()?;
        if let Some(name) = &self.oidc_name_claim {
            config.name_claims = vec![name.clone()];
        }
        if self.oidc_key_refresh_s == 0 {
            anyhow::bail!("--oidc-key-refresh-s 0: must be 1 or more (seconds between two fetches of the provider's keys)");
        }
        config.refresh_floor = std::time::Duration::from_secs(self.oidc_key_refresh_s);
        config.check()?;
        Ok(Some(config))
    }
}
