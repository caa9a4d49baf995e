package nodeagent

import (
	"net"
	"time"
)

type netDialer struct{}

func (netDialer) dial(ip, port string) (net.Conn, error) {
	return net.DialTimeout("tcp", net.JoinHostPort(ip, port), time.Second)
}
