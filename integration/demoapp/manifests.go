package demoapp

import "fmt"

// Manifests is the order-service example in a GitOps config
// repository, under apps/order-service: Deployments order-service-v1
// (stable, imageV1) and order-service-v2 (canary, imageV2), a Service, a
// DestinationRule with subsets v1 and v2, and a VirtualService splitting
// traffic w1/w2 between them.
func Manifests(imageV1, imageV2 string, w1, w2 int) map[string]string {
	deployment := func(version, image string) string {
		return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: order-service-%[1]s
  labels: {app: order-service, version: %[1]s}
spec:
  replicas: 1
  selector:
    matchLabels: {app: order-service, version: %[1]s}
  template:
    metadata:
      labels: {app: order-service, version: %[1]s}
    spec:
      containers:
        - name: order-service
          image: %[2]s
          ports: [{name: http, containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 1
`, version, image)
	}
	return map[string]string{
		"apps/order-service/deployment-v1.yaml": deployment("v1", imageV1),
		"apps/order-service/deployment-v2.yaml": deployment("v2", imageV2),
		"apps/order-service/service.yaml": `apiVersion: v1
kind: Service
metadata: {name: order-service}
spec:
  selector: {app: order-service}
  ports: [{name: http, port: 80, targetPort: http}]
`,
		"apps/order-service/destinationrule.yaml": `apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: order-service}
spec:
  host: order-service
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
`,
		"apps/order-service/virtualservice.yaml": fmt.Sprintf(`apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: order-service}
spec:
  hosts: [order-service]
  http:
    - route:
        # the canary's share of traffic: Slipway moves these weights in steps
        - destination: {host: order-service, subset: v1}
          weight: %d
        - destination: {host: order-service, subset: v2}
          weight: %d
`, w1, w2),
	}
}
