//! The ceiling: the least an HTTP/1.1 server can do for a request — read it and answer a fixed
//! JSON body on the same keep-alive connection. Every scenario runs against it in the same run,
//! and Citadel's numbers are quoted as ratios to it.

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The answer to every request: about the size of a small KMS response.
const BODY: &str = r#"{"KeyId":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab","CiphertextBlob":"Q0tNAQEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}"#;

/// Serves the ceiling on `listener` until the process ends.
pub async fn serve(listener: TcpListener) -> anyhow::Result<()> {
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\nx-amzn-requestid: 00000000-0000-0000-0000-000000000000\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let response: &'static [u8] = Box::leak(response.into_bytes().into_boxed_slice());
    loop {
        let (stream, _) = listener.accept().await.context("accepting")?;
        tokio::spawn(async move {
            // A connection ends when the client closes it or sends garbage.
            let _ = connection(stream, response).await;
        });
    }
}

async fn connection(stream: TcpStream, response: &[u8]) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        loop {
            line.clear();
            if stream.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse()?;
            }
        }
        body.resize(length, 0);
        stream.read_exact(&mut body).await?;
        stream.get_mut().write_all(response).await?;
    }
}
