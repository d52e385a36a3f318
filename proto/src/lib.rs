//! Generated gRPC code for every smsops service. Nothing here is hand-written
//! but this module tree; the sources of truth are the files under `proto/`.

// Generated oneofs keep their messages inline, as prost generates them.
#![allow(clippy::large_enum_variant)]

pub mod auth {
    pub mod v1 {
        tonic::include_proto!("smsops.auth.v1");
    }
}

pub mod metrics {
    pub mod v1 {
        tonic::include_proto!("smsops.metrics.v1");
    }
}

pub mod notify {
    pub mod v1 {
        tonic::include_proto!("smsops.notify.v1");
    }
}

pub mod operator {
    pub mod v1 {
        tonic::include_proto!("smsops.operator.v1");
    }
}

pub mod process {
    pub mod v1 {
        tonic::include_proto!("smsops.process.v1");
    }
}

pub mod sms {
    pub mod v1 {
        tonic::include_proto!("smsops.sms.v1");
    }
}

/// Every smsops message and service, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/smsops_descriptor.bin"));
