package watch

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func serviceOf(m Meta, s *corev1.Service) *Service {
	svc := &Service{Meta: m, ClusterIP: s.Spec.ClusterIP}
	if len(s.Spec.Selector) > 0 {
		svc.Selector = s.Spec.Selector
	}
	for _, p := range s.Spec.Ports {
		sp := ServicePort{
			Name:     p.Name,
			Port:     uint32(p.Port),
			Protocol: string(p.Protocol),
		}
		if sp.Protocol == "" {
			sp.Protocol = string(corev1.ProtocolTCP)
		}
		if p.AppProtocol != nil {
			sp.AppProtocol = *p.AppProtocol
		}
		switch {
		case p.TargetPort.Type == intstr.String && p.TargetPort.StrVal != "":
			sp.TargetPortName = p.TargetPort.StrVal
		case p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal != 0:
			sp.TargetPort = uint32(p.TargetPort.IntVal)
		default:
			sp.TargetPort = sp.Port
		}
		svc.Ports = append(svc.Ports, sp)
	}
	return svc
}
