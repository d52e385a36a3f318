use smsops_tests::TestApp;
use tokio_stream::StreamExt;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

/// Every service answers the standard gRPC health check, per service name
/// too, and lists its services through reflection (what grpcurl relies on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_serve_health_and_reflection() {
    let app = TestApp::spawn().await;
    for (addr, service) in [
        (app.auth_addr, "smsops.auth.v1.AuthService"),
        (app.operator_addr, "smsops.operator.v1.OperatorService"),
    ] {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = HealthClient::new(channel.clone());
        for name in ["", service] {
            let reply = health
                .check(HealthCheckRequest {
                    service: name.into(),
                })
                .await
                .unwrap();
            assert_eq!(
                reply.into_inner().status,
                ServingStatus::Serving as i32,
                "{service} {name:?}"
            );
        }

        let mut reflection = ServerReflectionClient::new(channel);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut replies = reflection
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let reply = replies.next().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
            panic!("unexpected reflection reply for {service}");
        };
        let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
        assert!(names.iter().any(|n| n == service), "{names:?}");
        assert!(
            names.iter().any(|n| n == "grpc.health.v1.Health"),
            "{names:?}"
        );
    }
    app.cleanup().await;
}
