//! The Kubernetes names in a container log's path, which become the `namespace`, `pod` and
//! `container` context of every record of the file.
//!
//! kubelet writes `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log` (rotated to
//! `<n>.log.<YYYYMMDD-hhmmss>`) and links `/var/log/containers/<pod>_<namespace>_<container>-
//! <id>.log` to it. Namespaces and pod names are DNS names, so they hold no `_`: splitting at `_`
//! is exact. Any other path gives no names.

use std::path::{Component, Path};

/// The names a container log's path tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodNames {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The container's name.
    pub container: String,
}

/// The names in `path`, if it is one of kubelet's container log paths.
pub fn names(path: &Path) -> Option<PodNames> {
    let parts: Vec<&str> = path
        .components()
        .filter_map(|component| match component {
            Component::Normal(part) => part.to_str(),
            _ => None,
        })
        .collect();
    match parts.as_slice() {
        [.., "pods", dir, container, file] if is_log_file(file) => {
            let mut names = dir.split('_');
            let (namespace, pod, uid) = (names.next()?, names.next()?, names.next()?);
            if names.next().is_some() || [namespace, pod, uid, container].contains(&"") {
                return None;
            }
            Some(PodNames {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
                container: (*container).to_string(),
            })
        }
        [.., "containers", file] => {
            let stem = file.strip_suffix(".log")?;
            let mut names = stem.split('_');
            let (pod, namespace, rest) = (names.next()?, names.next()?, names.next()?);
            let (container, id) = rest.rsplit_once('-')?;
            let hex = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
            if names.next().is_some() || !hex || [pod, namespace, container].contains(&"") {
                return None;
            }
            Some(PodNames {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
                container: container.to_string(),
            })
        }
        _ => None,
    }
}

/// `N.log` or a rotated `N.log.<stamp>` (the newest rotated file is still read to its end).
fn is_log_file(name: &str) -> bool {
    let Some((number, rest)) = name.split_once(".log") else {
        return false;
    };
    !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && (rest.is_empty() || rest.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::intake::decode::pod::{PodNames, names};

    fn pod(namespace: &str, pod: &str, container: &str) -> Option<PodNames> {
        Some(PodNames {
            namespace: namespace.into(),
            pod: pod.into(),
            container: container.into(),
        })
    }

    #[test]
    fn kubelet_paths_name_the_pod() {
        let uid = "5b3c6f0e-8f1c-4c1e-9a55-0c6d3b1f2a77";
        assert_eq!(
            names(Path::new(&format!(
                "/var/log/pods/kube-system_coredns-7db6d8ff4d-x2x9q_{uid}/coredns/0.log"
            ))),
            pod("kube-system", "coredns-7db6d8ff4d-x2x9q", "coredns")
        );
        assert_eq!(
            names(Path::new(&format!(
                "/host/var/log/pods/shop_web-0_{uid}/nginx/3.log.20261124-120000"
            ))),
            pod("shop", "web-0", "nginx")
        );
        let id = "0f".repeat(32);
        assert_eq!(
            names(Path::new(&format!(
                "/var/log/containers/web-0_shop_php-fpm-{id}.log"
            ))),
            pod("shop", "web-0", "php-fpm")
        );
    }

    #[test]
    fn other_paths_name_nothing() {
        for path in [
            "/var/log/syslog",
            "/var/log/pods/shop_web-0/nginx/0.log",
            "/var/log/pods/shop_web-0_uid_x/nginx/0.log",
            "/var/log/pods/shop_web-0_uid/nginx/0.log.gz.tmp.x/extra",
            "/var/log/pods/shop_web-0_uid/nginx/app.log",
            "/var/log/containers/web-0_shop_php-fpm-123.log",
            "/var/log/containers/notes.txt",
        ] {
            assert_eq!(names(Path::new(path)), None, "{path}");
        }
    }
}
