// Package deploy holds the Kubernetes manifests of the service. Its test
// checks them, the Dockerfile and docker-compose.yml against what the
// binary reads: its port, health routes and environment variables.
package deploy
