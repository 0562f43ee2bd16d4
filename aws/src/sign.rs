//! SigV4 for one request: `aws-sigv4` does the signing, this module only
//! fetches the credentials and applies the signature's headers.

use std::time::SystemTime;

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

use crate::Access;

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SignError {
    /// The credential provider had nothing (no keys in the chain, an
    /// expired SSO session, an unreachable instance metadata service).
    #[error("no AWS credentials: {0}")]
    Credentials(String),
    /// The request or the parameters were refused by the signer.
    #[error("cannot sign the request: {0}")]
    Signing(String),
}

/// Signs `request` for `service` in `access.region`, adding the
/// `authorization`, `x-amz-date` (and `x-amz-security-token`) headers.
pub(crate) async fn sign_request(
    access: &Access,
    service: &str,
    request: &mut http::Request<Vec<u8>>,
) -> Result<(), SignError> {
    let credentials =
        access.credentials.provide_credentials().await.map_err(|e| SignError::Credentials(error_chain(&e)))?;
    let identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&access.region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| SignError::Signing(e.to_string()))?
        .into();
    let uri = request.uri().to_string();
    let headers = request.headers().iter().filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
    let signable = SignableRequest::new(request.method().as_str(), uri, headers, SignableBody::Bytes(request.body()))
        .map_err(|e| SignError::Signing(e.to_string()))?;
    let (instructions, _signature) =
        sign(signable, &params).map_err(|e| SignError::Signing(e.to_string()))?.into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

pub(crate) use mskbench_core::errors::error_chain;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_credential_types::Credentials;
    use aws_credential_types::provider::SharedCredentialsProvider;

    use super::*;

    #[tokio::test]
    async fn a_signed_request_carries_the_scope_and_signs_host_and_target() {
        let access = Access {
            region: "eu-west-1".into(),
            credentials: SharedCredentialsProvider::new(Credentials::new(
                "AKID",
                "secret",
                Some("tok".into()),
                None,
                "t",
            )),
            endpoint: None,
            timeout: Duration::from_secs(1),
        };
        let mut request = http::Request::post("https://glue.eu-west-1.amazonaws.com/")
            .header("host", "glue.eu-west-1.amazonaws.com")
            .header("x-amz-target", "AWSGlue.GetSchemaVersion")
            .body(b"{}".to_vec())
            .unwrap();
        sign_request(&access, "glue", &mut request).await.unwrap();
        let auth = request.headers()["authorization"].to_str().unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKID/"), "{auth}");
        assert!(auth.contains("/eu-west-1/glue/aws4_request"), "{auth}");
        let signed = auth.split("SignedHeaders=").nth(1).unwrap().split(',').next().unwrap();
        assert!(signed.split(';').any(|h| h == "host") && signed.contains("x-amz-target"), "{signed}");
        assert_eq!(request.headers()["x-amz-security-token"], "tok");
        assert!(request.headers().contains_key("x-amz-date"));
    }
}
