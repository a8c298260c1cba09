//! Platform presets: what address source, basename and discovery query a
//! platform implies, from its own variables. Explicit flags always win
//! (`config` applies a preset only where a flag is absent).

use std::collections::HashMap;

use crate::address::{RANCHER_DEFAULT, Source};

/// `--platform`: which platform's variables fill the address source, basename and query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Platform {
    #[default]
    Auto,
    Kubernetes,
    Swarm,
    Compose,
    Rancher,
    Fly,
    Ecs,
    Render,
    None,
}

/// Kubernetes mounts the pod's namespace here (service-account token volume).
pub const K8S_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Rancher 1.x containers use the metadata host's DNS at this address.
const RANCHER_DNS: &str = "169.254.169.250";

#[derive(Debug, Clone)]
pub struct Preset {
    pub platform: Platform,
    /// Why this platform was chosen (for `inspect` and the log).
    pub reason: String,
    pub sources: Vec<Source>,
    pub basename: Option<String>,
    /// A query template (rendered by `config` like `--query`).
    pub query: Option<String>,
    /// Something the user should know (e.g. a missing BEAMUP_SERVICE).
    pub hint: Option<String>,
}

pub fn name(p: Platform) -> &'static str {
    match p {
        Platform::Auto => "auto",
        Platform::Kubernetes => "kubernetes",
        Platform::Swarm => "swarm",
        Platform::Compose => "compose",
        Platform::Rancher => "rancher",
        Platform::Fly => "fly",
        Platform::Ecs => "ecs",
        Platform::Render => "render",
        Platform::None => "none",
    }
}

/// Detects the platform (for `auto`) from variables each platform sets in every
/// container, and /etc/resolv.conf for Rancher 1.x, which sets no variable.
/// `resolv_conf` is read only when no variable settled the question.
pub fn detect(
    env: &HashMap<String, String>,
    resolv_conf: impl FnOnce() -> String,
) -> (Platform, String) {
    let has = |v: &str| env.contains_key(v);
    if has("KUBERNETES_SERVICE_HOST") {
        return (
            Platform::Kubernetes,
            "KUBERNETES_SERVICE_HOST is set".into(),
        );
    }
    if has("FLY_APP_NAME") {
        return (Platform::Fly, "FLY_APP_NAME is set".into());
    }
    if has("ECS_CONTAINER_METADATA_URI_V4") || has("ECS_CONTAINER_METADATA_URI") {
        return (Platform::Ecs, "ECS_CONTAINER_METADATA_URI_V4 is set".into());
    }
    if has("RENDER_SERVICE_NAME") || has("RENDER_INTERNAL_IP") {
        return (Platform::Render, "RENDER_SERVICE_NAME is set".into());
    }
    if resolv_conf()
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["nameserver", RANCHER_DNS])
    {
        return (
            Platform::Rancher,
            format!("/etc/resolv.conf uses Rancher's metadata DNS {RANCHER_DNS}"),
        );
    }
    (
        Platform::None,
        "no platform variable found (KUBERNETES_SERVICE_HOST, FLY_APP_NAME, \
         ECS_CONTAINER_METADATA_URI_V4, RENDER_SERVICE_NAME, Rancher DNS)"
            .into(),
    )
}

/// The preset for `requested` (`auto` detects). `resolv_conf` and
/// `k8s_namespace` (the service-account namespace file) are read only when
/// needed: this runs in front of every boot.
pub fn preset(
    requested: Platform,
    env: &HashMap<String, String>,
    resolv_conf: impl FnOnce() -> String,
    k8s_namespace: impl FnOnce() -> Option<String>,
) -> Preset {
    let (platform, reason) = match requested {
        Platform::Auto => detect(env, resolv_conf),
        p => (p, format!("--platform {}", name(p))),
    };
    let service = env.get("BEAMUP_SERVICE").filter(|s| !s.is_empty());
    let need_service = |what: &str| {
        Some(format!(
            "set BEAMUP_SERVICE to the {what} so beamup can discover peers (or give --query)"
        ))
    };
    let mut p = Preset {
        platform,
        reason,
        sources: vec![Source::Auto],
        basename: None,
        query: None,
        hint: None,
    };
    match platform {
        Platform::Kubernetes => {
            p.sources = vec![Source::Env("POD_IP".into()), Source::Hostname];
            match service {
                Some(svc) => {
                    let ns = env
                        .get("POD_NAMESPACE")
                        .cloned()
                        .or_else(k8s_namespace)
                        .map(|ns| ns.trim().to_string())
                        .filter(|ns| !ns.is_empty());
                    p.query = Some(match ns {
                        Some(ns) => {
                            format!("{svc}.{ns}.svc.${{BEAMUP_CLUSTER_DOMAIN:-cluster.local}}")
                        }
                        // Without a namespace the short name still resolves
                        // through the pod's search domains (ndots:5).
                        None => svc.clone(),
                    });
                }
                None => p.hint = need_service("headless service's name (clusterIP: None)"),
            }
        }
        Platform::Swarm => {
            // A task may sit on several networks (ingress, overlay,
            // docker_gwbridge): the address its peers dial is the one DNS
            // gives them for the service.
            p.sources = vec![Source::Query, Source::Auto];
            match service {
                Some(svc) => p.query = Some(format!("tasks.{svc}")),
                None => p.hint = need_service("swarm service's name"),
            }
        }
        Platform::Compose => match service {
            Some(svc) => {
                p.sources = vec![Source::Query, Source::Auto];
                p.query = Some(svc.clone());
            }
            None => p.hint = need_service("compose service name or network alias"),
        },
        Platform::Rancher => {
            p.sources = vec![Source::Rancher(RANCHER_DEFAULT.into())];
            p.query = Some(match service {
                Some(svc) => svc.clone(),
                None => "${RANCHER_SERVICE_NAME}".into(),
            });
        }
        Platform::Fly => {
            p.sources = vec![Source::Env("FLY_PRIVATE_IP".into())];
            p.basename = env.get("FLY_APP_NAME").cloned();
            p.query = Some("${FLY_APP_NAME}.internal".into());
        }
        Platform::Ecs => {
            p.sources = vec![Source::Ecs(None)];
            p.query = service.cloned();
        }
        Platform::Render => {
            p.sources = vec![Source::Env("RENDER_INTERNAL_IP".into())];
            p.basename = env.get("RENDER_SERVICE_NAME").cloned();
            p.query = env
                .get("RENDER_DISCOVERY_SERVICE")
                .map(|_| "${RENDER_DISCOVERY_SERVICE}".to_string());
        }
        Platform::Auto | Platform::None => {}
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn detection_table() {
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, Platform);
        let table: [Case; 7] = [
            (
                &[("KUBERNETES_SERVICE_HOST", "10.96.0.1")],
                "",
                Platform::Kubernetes,
            ),
            (&[("FLY_APP_NAME", "app")], "", Platform::Fly),
            (
                &[("ECS_CONTAINER_METADATA_URI_V4", "http://x")],
                "",
                Platform::Ecs,
            ),
            (&[("RENDER_SERVICE_NAME", "web")], "", Platform::Render),
            (
                &[],
                "search x\nnameserver 169.254.169.250\n",
                Platform::Rancher,
            ),
            (&[], "nameserver 127.0.0.11\n", Platform::None),
            (&[("HOME", "/root")], "", Platform::None),
        ];
        for (vars, resolv, want) in table {
            assert_eq!(
                detect(&env(vars), || resolv.to_string()).0,
                want,
                "{vars:?} {resolv:?}"
            );
        }
    }

    #[test]
    fn presets() {
        let k = preset(
            Platform::Auto,
            &env(&[
                ("KUBERNETES_SERVICE_HOST", "x"),
                ("BEAMUP_SERVICE", "web-headless"),
            ]),
            String::new,
            || Some("prod\n".to_string()),
        );
        assert_eq!(k.platform, Platform::Kubernetes);
        assert_eq!(
            k.query.as_deref(),
            Some("web-headless.prod.svc.${BEAMUP_CLUSTER_DOMAIN:-cluster.local}")
        );
        assert_eq!(k.sources, [Source::Env("POD_IP".into()), Source::Hostname]);

        let k = preset(Platform::Kubernetes, &env(&[]), String::new, || None);
        assert!(k.query.is_none());
        assert!(k.hint.unwrap().contains("BEAMUP_SERVICE"));

        let s = preset(
            Platform::Swarm,
            &env(&[("BEAMUP_SERVICE", "web")]),
            String::new,
            || None,
        );
        assert_eq!(s.query.as_deref(), Some("tasks.web"));
        assert_eq!(s.reason, "--platform swarm");

        let f = preset(
            Platform::Auto,
            &env(&[("FLY_APP_NAME", "my-app"), ("FLY_PRIVATE_IP", "fdaa::3")]),
            String::new,
            || None,
        );
        assert_eq!(f.basename.as_deref(), Some("my-app"));
        assert_eq!(f.query.as_deref(), Some("${FLY_APP_NAME}.internal"));

        let r = preset(Platform::Rancher, &env(&[]), String::new, || None);
        assert_eq!(r.sources, [Source::Rancher(RANCHER_DEFAULT.into())]);
        assert_eq!(r.query.as_deref(), Some("${RANCHER_SERVICE_NAME}"));

        let n = preset(
            Platform::None,
            &env(&[("FLY_APP_NAME", "x")]),
            String::new,
            || None,
        );
        assert_eq!(n.sources, [Source::Auto]);
        assert!(n.query.is_none());
    }
}
