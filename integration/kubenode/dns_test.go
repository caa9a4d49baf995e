package kubenode

import (
	"net"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func query(t *testing.T, name string, typ dnsmessage.Type) []byte {
	t.Helper()
	m := dnsmessage.Message{Header: dnsmessage.Header{ID: 7, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}}}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The cluster DNS answers a Service's name with its cluster IP, and
// every other name — another domain, a headless Service, a missing one,
// a malformed or hostile message — with NXDOMAIN or nothing, never an
// address.
func TestClusterDNSAnswersServices(t *testing.T) {
	t.Parallel()
	kube := fake.NewSimpleClientset(
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "trivy", Namespace: "slipway"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.4.5"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "slipway"}, Spec: corev1.ServiceSpec{ClusterIP: "None"}})
	d := &dnsServer{kube: kube}
	for _, tt := range []struct {
		name  string
		typ   dnsmessage.Type
		rcode dnsmessage.RCode
		ip    string
	}{
		{"trivy.slipway.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, "10.96.4.5"},
		{"TRIVY.Slipway.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, "10.96.4.5"},
		{"trivy.slipway.svc.cluster.local.", dnsmessage.TypeAAAA, dnsmessage.RCodeSuccess, ""},
		{"trivy.slipway.svc.slipway.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeNameError, ""},
		{"nope.slipway.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeNameError, ""},
		{"db.slipway.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeNameError, ""},
		{"example.com.", dnsmessage.TypeA, dnsmessage.RCodeNameError, ""},
		{"svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeNameError, ""},
	} {
		out, err := d.answer(query(t, tt.name, tt.typ))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var m dnsmessage.Message
		if err := m.Unpack(out); err != nil {
			t.Fatal(err)
		}
		var ip string
		for _, a := range m.Answers {
			if r, ok := a.Body.(*dnsmessage.AResource); ok {
				ip = net.IP(r.A[:]).String()
			}
		}
		if m.Header.ID != 7 || !m.Header.Response || m.Header.RCode != tt.rcode || ip != tt.ip {
			t.Errorf("%s %v: id %d, rcode %v, ip %q; want %v %q", tt.name, tt.typ, m.Header.ID, m.Header.RCode, ip, tt.rcode, tt.ip)
		}
	}
	for name, msg := range map[string][]byte{"empty": nil, "garbage": []byte("\x00\x01not dns"), "truncated": query(t, "a.b.svc.cluster.local.", dnsmessage.TypeA)[:14]} {
		if out, err := d.answer(msg); err == nil {
			t.Errorf("%s: answered %x", name, out)
		}
	}
}
