//! `tokio_util` codec for SIP over TCP/TLS: a thin wrapper around the sans-IO
//! [`sipfleet_protocol::framing::Framer`], so framing rules are tested once,
//! without a runtime, and the socket code only moves bytes.
//!
//! Decoding yields [`Frame`]s (message, RFC 5626 ping, pong). Encoding writes a
//! [`Frame`], a serialized message ([`Bytes`]) or a
//! [`sipfleet_protocol::message::Message`].

use std::io;

use bytes::{Bytes, BytesMut};
use sipfleet_protocol::framing::{Frame, Framer, FramerConfig, FramingError};
use sipfleet_protocol::message::Message;
use tokio_util::codec::{Decoder, Encoder};

/// What went wrong on a SIP stream.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The byte stream cannot be framed; close the connection.
    #[error("SIP stream framing: {0}")]
    Framing(#[from] FramingError),
    /// The socket failed.
    #[error("SIP stream I/O: {0}")]
    Io(#[from] io::Error),
}

impl From<CodecError> for io::Error {
    /// For decoders typed on `io::Error`: framing errors become
    /// `InvalidData` carrying the [`FramingError`] (see `io::Error::get_ref`).
    fn from(e: CodecError) -> io::Error {
        match e {
            CodecError::Io(e) => e,
            CodecError::Framing(f) => io::Error::new(io::ErrorKind::InvalidData, f),
        }
    }
}

/// The SIP stream codec.
#[derive(Debug, Clone, Default)]
pub struct SipCodec {
    framer: Framer,
}

impl SipCodec {
    /// A codec with these framing settings.
    pub fn new(config: FramerConfig) -> Self {
        SipCodec {
            framer: Framer::new(config),
        }
    }

    /// The framing settings.
    pub fn config(&self) -> &FramerConfig {
        self.framer.config()
    }
}

impl Decoder for SipCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        Ok(self.framer.decode(src)?)
    }
    // `decode_eof`'s default reports bytes left in the buffer at EOF as an
    // error ("bytes remaining on stream"), which is right for a cut message.
}

impl Encoder<Frame> for SipCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        match item {
            Frame::Message(b) => dst.extend_from_slice(&b),
            Frame::Ping => dst.extend_from_slice(b"\r\n\r\n"),
            Frame::Pong => dst.extend_from_slice(b"\r\n"),
        }
        Ok(())
    }
}

impl Encoder<Bytes> for SipCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}

impl Encoder<&Message> for SipCodec {
    type Error = CodecError;

    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        match item {
            Message::Request(r) => r.write_to(dst),
            Message::Response(r) => r.write_to(dst),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sipfleet_protocol::framing::KeepAliveRole;
    use sipfleet_protocol::message::{HeaderName, Method, Request};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const MSG: &[u8] =
        b"OPTIONS sip:a@example.com SIP/2.0\r\nCall-ID: c1\r\nContent-Length: 4\r\n\r\nbody";

    /// What `FramedRead` does: read into a `BytesMut`, decode until `None`.
    #[tokio::test]
    async fn decodes_over_an_in_memory_stream_with_partial_writes() {
        let (mut tx, mut rx) = tokio::io::duplex(16);
        let writer = tokio::spawn(async move {
            tx.write_all(b"\r\n\r\n").await.unwrap();
            for chunk in MSG.chunks(7) {
                tx.write_all(chunk).await.unwrap();
            }
            tx.write_all(b"\r\n").await.unwrap();
            tx.write_all(MSG).await.unwrap();
        });
        let mut codec = SipCodec::new(FramerConfig {
            role: KeepAliveRole::Server,
            ..FramerConfig::default()
        });
        let mut buf = BytesMut::new();
        let mut frames = vec![];
        loop {
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                frames.push(f);
            }
            if rx.read_buf(&mut buf).await.unwrap() == 0 {
                assert!(codec.decode_eof(&mut buf).unwrap().is_none());
                break;
            }
        }
        writer.await.unwrap();
        let m = Frame::Message(Bytes::from_static(MSG));
        assert_eq!(frames, [Frame::Ping, m.clone(), Frame::Pong, m]);
    }

    #[test]
    fn cut_message_at_eof_is_an_error() {
        let mut codec = SipCodec::default();
        let mut buf = BytesMut::from(&MSG[..MSG.len() - 1]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(codec.decode_eof(&mut buf).is_err());
    }

    #[test]
    fn framing_errors_are_typed_and_convert_to_io() {
        let mut codec = SipCodec::default();
        let mut buf = BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n"[..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            CodecError::Framing(FramingError::MissingContentLength)
        ));
        let io: io::Error = err.into();
        assert_eq!(io.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            io.get_ref().and_then(|e| e.downcast_ref::<FramingError>()),
            Some(&FramingError::MissingContentLength)
        );
    }

    #[test]
    fn encodes_frames_and_messages() {
        let mut codec = SipCodec::default();
        let mut out = BytesMut::new();
        codec.encode(Frame::Ping, &mut out).unwrap();
        codec.encode(Frame::Pong, &mut out).unwrap();
        let mut req = Request::new(Method::Options, "sip:a@example.com").unwrap();
        req.headers_mut().push(HeaderName::CallId, "c1");
        req.set_body(&b"body"[..]);
        let msg = Message::Request(req);
        codec.encode(&msg, &mut out).unwrap();
        codec.encode(Bytes::from_static(MSG), &mut out).unwrap();
        assert_eq!(&out[..6], b"\r\n\r\n\r\n");
        let mut frames = vec![];
        let mut server = SipCodec::new(FramerConfig {
            role: KeepAliveRole::Server,
            ..FramerConfig::default()
        });
        while let Some(f) = server.decode(&mut out).unwrap() {
            frames.push(f);
        }
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[0], Frame::Ping);
        assert_eq!(frames[1], Frame::Pong);
        let Frame::Message(wire) = &frames[2] else {
            panic!("expected a message, got {:?}", frames[2]);
        };
        assert_eq!(Message::parse(wire.clone()).unwrap(), msg);
        assert_eq!(frames[3], Frame::Message(Bytes::from_static(MSG)));
    }
}
