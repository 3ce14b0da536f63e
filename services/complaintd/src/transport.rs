//! A tower layer in front of every service that corrects the statuses tonic produces on
//! its own, before any service code runs (decoding the request, its size limit), with the
//! codes of [`errors::transport`](crate::errors::transport).

use std::task::{Context, Poll};

use futures::future::BoxFuture;

/// Rewrites the trailers-only statuses of tonic's codec to the codes gRPC specifies.
#[derive(Clone, Copy, Default)]
pub struct CodecStatusLayer;

impl<S> tower::Layer<S> for CodecStatusLayer {
    type Service = CodecStatus<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CodecStatus { inner }
    }
}

#[derive(Clone)]
pub struct CodecStatus<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for CodecStatus<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            // A status in the headers is a trailers-only reply: the call ended before any
            // message, which is where tonic reports a request it could not read.
            if let Some(status) = tonic::Status::from_header_map(response.headers()) {
                if let Some(corrected) = crate::errors::transport(&status) {
                    let headers = response.headers_mut();
                    headers.remove("grpc-status");
                    headers.remove("grpc-message");
                    headers.remove("grpc-status-details-bin");
                    if corrected.add_header(headers).is_err() {
                        tracing::warn!("could not rewrite a codec status");
                    }
                }
            }
            Ok(response)
        })
    }
}
