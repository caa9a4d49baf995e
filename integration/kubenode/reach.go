package kubenode

import (
	"fmt"
	"net"
	"strconv"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// ReachPolicy is the NetworkPolicy an operator adds beside a namespace's
// default-deny so that its Pods reach services on a private network: each
// of addrs (IP:port, over TCP) — here the node's relays to the git server
// and the registry.
func ReachPolicy(namespace string, addrs []string) (*networkingv1.NetworkPolicy, error) {
	np := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: "local-services", Namespace: namespace},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}},
	}
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil || net.ParseIP(host) == nil {
			return nil, fmt.Errorf("what a Pod may reach, %q: not IP:port", a)
		}
		p := intstr.FromInt32(int32(n))
		np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{
			To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: host + "/32"}}},
			Ports: []networkingv1.NetworkPolicyPort{{Port: &p}}})
	}
	return np, nil
}
