//! A bucket behind a [`Location`](super::location::Location): the object store of its cloud
//! (S3, GCS, Azure, through object_store) and its bucket, puts in one request or in parts,
//! and the helpers that tell an unreachable endpoint apart and keep errors to one line.

use object_store::path::Path as Key;
use object_store::ObjectStore;
use std::future::Future;
use std::path::{Component, Path};
use std::sync::Arc;

pub(super) struct Remote {
    pub(super) store: Arc<dyn ObjectStore>,
    /// `s3://bucket`, for messages (never credentials).
    pub(super) base: String,
    pub(super) cloud: Cloud,
}

/// The object stores a location can be in, each configured from its own standard variables.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Cloud {
    /// AWS S3, or an S3-compatible server (MinIO, R2, moto...) through AWS_ENDPOINT_URL.
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage (a container of a storage account), or Azurite.
    Azure,
}

impl Cloud {
    pub(super) fn scheme(self) -> &'static str {
        match self {
            Cloud::S3 => "s3",
            Cloud::Gcs => "gs",
            Cloud::Azure => "az",
        }
    }

    /// The variables that say who we are.
    pub(super) fn variables(self) -> &'static str {
        match self {
            Cloud::S3 => "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            Cloud::Gcs => {
                "GOOGLE_SERVICE_ACCOUNT (a key file), GOOGLE_SERVICE_ACCOUNT_KEY or \
                 GOOGLE_APPLICATION_CREDENTIALS"
            }
            Cloud::Azure => {
                "AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY (or \
                 AZURE_STORAGE_SAS_KEY, or AZURE_STORAGE_USE_EMULATOR=true for Azurite)"
            }
        }
    }

    /// The variables that say where the endpoint is.
    pub(super) fn endpoint_variables(self) -> &'static str {
        match self {
            Cloud::S3 => "AWS_ENDPOINT_URL (and AWS_ALLOW_HTTP=true for a plain-http server)",
            Cloud::Gcs => "the network, or gcs_base_url in GOOGLE_SERVICE_ACCOUNT's file",
            Cloud::Azure => {
                "AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ENDPOINT or AZURITE_BLOB_STORAGE_URL"
            }
        }
    }
}

impl Remote {
    /// `s3://bucket/key` of a path.
    pub(super) fn show(&self, path: &Path) -> String {
        match key_of(path).as_ref() {
            "" => self.base.clone(),
            k => format!("{}/{k}", self.base),
        }
    }

    /// One line naming what failed and what to check; never a credential.
    pub(super) fn error(&self, what: &str, path: &Path, e: object_store::Error) -> anyhow::Error {
        let at = self.show(path);
        let text = one_line(&e);
        let bucket = self.base.split_once("://").map_or("", |(_, b)| b);
        let hint = if text.contains("NoSuchBucket") || text.contains("ContainerNotFound") {
            let kind = if self.cloud == Cloud::Azure {
                "container"
            } else {
                "bucket"
            };
            format!("the {kind} {bucket} does not exist")
        } else if text.contains("token request") || text.contains("Error getting token") {
            // No key given, so the client asked the cloud VM's metadata server for one.
            format!(
                "no credentials: set {} (without them only a cloud VM's own identity works)",
                self.cloud.variables()
            )
        } else if matches!(
            e,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        ) || [
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AuthenticationFailed",
            "AuthorizationFailure",
            "status code: 403",
            "status code: 401",
        ]
        .iter()
        .any(|code| text.contains(code))
        {
            format!(
                "access denied: check {} (and the bucket's policy)",
                self.cloud.variables()
            )
        } else if unreachable(&e)
            || text.contains("error sending request")
            || text.contains("dns error")
        {
            format!(
                "the object store's endpoint cannot be reached: check {}",
                self.cloud.endpoint_variables()
            )
        } else {
            text
        };
        anyhow::anyhow!("cannot {what} {at}: {hint}")
    }
}

/// Makes `dir` (mode 0700) or checks the one there is ours alone: a real folder, not a
/// Whether the store's endpoint could not be reached (a refused or failed connection, or a
/// timeout), told by the HTTP error's kind in the chain of causes. Never by digits in the
/// text: that holds the request's URL and its elapsed time ("in 1.403ms"), either of which
/// can contain "403" or any status code by chance.
pub(super) fn unreachable(e: &(dyn std::error::Error + 'static)) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(h) = c.downcast_ref::<HttpError>() {
            if matches!(h.kind(), HttpErrorKind::Connect | HttpErrorKind::Timeout) {
                return true;
            }
        }
        cause = c.source();
    }
    false
}

/// An error's text (and its causes') on one line, with the credentials' values blanked
/// should a server echo one.
pub(super) fn one_line(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let cause = s.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
        source = s.source();
    }
    data_core::secrets::scrub(&text).replace(['\n', '\r'], " ")
}

/// The object key of a relative path.
pub(super) fn key_of(path: &Path) -> Key {
    let parts: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    Key::from(parts.join("/"))
}

/// Runs `f` to completion on the current runtime from synchronous code.
pub(super) fn block<F: Future>(f: F) -> F::Output {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => tokio::task::block_in_place(|| h.block_on(f)),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| rt.block_on(f))
            .unwrap_or_else(|e| panic!("cannot start a runtime: {e}")),
    }
}
