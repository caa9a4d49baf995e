package kubenode

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ClusterDomain is the cluster's DNS domain: a Service is
// NAME.NAMESPACE.svc.ClusterDomain.
const ClusterDomain = "cluster.local"

// dnsServer is the node's cluster DNS, in place of the CoreDNS add-on: it
// answers the Pods' questions for Services (A records of their cluster
// IPs, read from the API at each question, as CoreDNS's kubernetes plugin
// serves them from its cache) on the node's address, port 53, over UDP.
// Every other name is NXDOMAIN: there is no route off the machine to
// forward to. Answers fit one UDP message, so there is no TCP.
type dnsServer struct {
	kube kubernetes.Interface
	conn net.PacketConn
	done chan struct{}
}

func startDNS(kube kubernetes.Interface, addr string) (*dnsServer, error) {
	conn, err := net.ListenPacket("udp4", net.JoinHostPort(addr, "53"))
	if err != nil {
		return nil, err
	}
	d := &dnsServer{kube: kube, conn: conn, done: make(chan struct{})}
	go d.serve()
	return d, nil
}

func (d *dnsServer) serve() {
	defer close(d.done)
	buf := make([]byte, 512)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		if out, err := d.answer(buf[:n]); err == nil {
			d.conn.WriteTo(out, from)
		}
	}
}

func (d *dnsServer) stop() {
	d.conn.Close()
	<-d.done
}

// answer is the response to one query message.
func (d *dnsServer) answer(query []byte) ([]byte, error) {
	var m dnsmessage.Message
	if err := m.Unpack(query); err != nil {
		return nil, err
	}
	if m.Header.Response || len(m.Questions) != 1 {
		return nil, errors.New("not one question")
	}
	q := m.Questions[0]
	resp := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: m.Header.ID, Response: true, Authoritative: true, RecursionDesired: m.Header.RecursionDesired},
		Questions: m.Questions,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ip, err := d.lookup(ctx, q.Name.String())
	switch {
	case err != nil:
		resp.Header.RCode = dnsmessage.RCodeServerFailure
	case ip == nil:
		resp.Header.RCode = dnsmessage.RCodeNameError
	case q.Type == dnsmessage.TypeA && q.Class == dnsmessage.ClassINET:
		var a [4]byte
		copy(a[:], ip.To4())
		resp.Answers = []dnsmessage.Resource{{
			Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 5},
			Body:   &dnsmessage.AResource{A: a},
		}}
	} // any other type of a name that exists: no answer (NODATA)
	return resp.Pack()
}

// lookup is the cluster IP of the Service name names, or nil when there
// is no such Service (or name is not a Service's).
func (d *dnsServer) lookup(ctx context.Context, name string) (net.IP, error) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	rest, ok := strings.CutSuffix(name, ".svc."+ClusterDomain)
	if !ok {
		return nil, nil
	}
	svc, ns, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(ns, ".") {
		return nil, nil
	}
	s, err := d.kube.CoreV1().Services(ns).Get(ctx, svc, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsBadRequest(err) || apierrors.IsInvalid(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(s.Spec.ClusterIP)
	if ip == nil || ip.To4() == nil { // headless, or IPv6
		return nil, nil
	}
	return ip, nil
}
