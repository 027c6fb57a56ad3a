// go-baseline-server: the RouteGuide service on grpc-go (Debian's 1.33), as
// gRPC's Go example serves it, for the benchmark to compare our server with
// the Go stack: a plain grpc.NewServer(), one goroutine per call, Send and
// Recv per message. It answers as our baselines do (the same validation,
// the same note bounds), so the tests that check them check this one too.
// One change from the example, in Go's favour: GetFeature and RecordRoute
// look points up in a map, where the example compares every stored feature
// with proto.Equal, so that the RPC layer is what the benchmark compares.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"math"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "routeguide_go/routeguide"
)

const (
	maxLatitudeE7       = 900000000
	maxLongitudeE7      = 1800000000
	maxNoteBytes        = 4 * 1024 // our server's default --max_note_size
	maxNotesPerLocation = 100      // FeatureStore's defaults
	maxNotes            = 100000
	earthRadiusMeters   = 6371000.0
	e7PerDegree         = 1e7
	shutdownGrace       = 1 * time.Second // as the C++ baselines
	exitUsage           = 2
	defaultAddress      = "127.0.0.1:0"
)

// The repository's data/route_guide_db.json, which build.py puts beside
// this file: the database our servers embed.
//
//go:embed route_guide_db.json
var builtInDatabase []byte

type location struct{ latitude, longitude int32 }

func keyOf(p *pb.Point) location { return location{p.GetLatitude(), p.GetLongitude()} }

type jsonFeature struct {
	Location struct {
		Latitude  int32 `json:"latitude"`
		Longitude int32 `json:"longitude"`
	} `json:"location"`
	Name string `json:"name"`
}

type routeGuideServer struct {
	features []*pb.Feature // file order, for ListFeatures
	byPoint  map[location]*pb.Feature

	mu        sync.Mutex
	notes     map[location][]keptNote // oldest first
	noteOrder []orderEntry            // oldest first; may name dropped notes
	sequence  uint64
	kept      int
}

type keptNote struct {
	sequence uint64
	note     *pb.RouteNote
}

type orderEntry struct {
	key      location
	sequence uint64
}

func validatePoint(p *pb.Point, what string) error {
	lat, lng := p.GetLatitude(), p.GetLongitude()
	if lat < -maxLatitudeE7 || lat > maxLatitudeE7 || lng < -maxLongitudeE7 || lng > maxLongitudeE7 {
		return status.Errorf(codes.InvalidArgument,
			"%s (%d, %d) is outside latitude +/-90 and longitude +/-180 degrees", what, lat, lng)
	}
	return nil
}

func (s *routeGuideServer) GetFeature(ctx context.Context, point *pb.Point) (*pb.Feature, error) {
	if err := validatePoint(point, "point"); err != nil {
		return nil, err
	}
	if feature, ok := s.byPoint[keyOf(point)]; ok {
		return feature, nil
	}
	return &pb.Feature{Location: point}, nil
}

func (s *routeGuideServer) ListFeatures(rect *pb.Rectangle, stream pb.RouteGuide_ListFeaturesServer) error {
	if err := validatePoint(rect.GetLo(), "rectangle lo"); err != nil {
		return err
	}
	if err := validatePoint(rect.GetHi(), "rectangle hi"); err != nil {
		return err
	}
	lo, hi := rect.GetLo(), rect.GetHi()
	minLat, maxLat := ordered(lo.GetLatitude(), hi.GetLatitude())
	minLng, maxLng := ordered(lo.GetLongitude(), hi.GetLongitude())
	for _, feature := range s.features {
		lat, lng := feature.Location.Latitude, feature.Location.Longitude
		if lat >= minLat && lat <= maxLat && lng >= minLng && lng <= maxLng {
			if err := stream.Send(feature); err != nil {
				return err
			}
		}
	}
	return nil
}

func ordered(a, b int32) (int32, int32) {
	if a <= b {
		return a, b
	}
	return b, a
}

func (s *routeGuideServer) RecordRoute(stream pb.RouteGuide_RecordRouteServer) error {
	var pointCount, featureCount int64
	var distance float64
	var previous *pb.Point
	start := time.Now()
	for {
		point, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&pb.RouteSummary{
				PointCount:   saturate(float64(pointCount)),
				FeatureCount: saturate(float64(featureCount)),
				Distance:     saturate(distance),
				ElapsedTime:  saturate(time.Since(start).Truncate(time.Second).Seconds()),
			})
		}
		if err != nil {
			return err
		}
		if err := validatePoint(point, "point"); err != nil {
			return err
		}
		pointCount++
		if _, ok := s.byPoint[keyOf(point)]; ok {
			featureCount++
		}
		if previous != nil {
			distance += haversineMeters(previous, point)
		}
		previous = point
	}
}

func saturate(x float64) int32 {
	if x >= math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(x)
}

// The tutorial's great-circle distance, computed in the order common/geo.cc
// computes it (Go's math library may still differ from glibc's in a last
// bit, which the summaries' whole meters rarely show).
func haversineMeters(a, b *pb.Point) float64 {
	const radiansPerDegree = math.Pi / 180
	latA := float64(a.Latitude) / e7PerDegree
	latB := float64(b.Latitude) / e7PerDegree
	dLat := (latB - latA) * radiansPerDegree
	dLng := (float64(b.Longitude)/e7PerDegree - float64(a.Longitude)/e7PerDegree) * radiansPerDegree
	sinHalfDLat := math.Sin(dLat / 2)
	sinHalfDLng := math.Sin(dLng / 2)
	h := sinHalfDLat*sinHalfDLat +
		math.Cos(latA*radiansPerDegree)*math.Cos(latB*radiansPerDegree)*sinHalfDLng*sinHalfDLng
	h = math.Min(1, math.Max(0, h))
	return earthRadiusMeters * 2 * math.Atan2(math.Sqrt(h), math.Sqrt(1-h))
}

func (s *routeGuideServer) RouteChat(stream pb.RouteGuide_RouteChatServer) error {
	for {
		note, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := validatePoint(note.GetLocation(), "note location"); err != nil {
			return err
		}
		if len(note.Message) > maxNoteBytes {
			return status.Errorf(codes.InvalidArgument,
				"note message is %d bytes, longer than the limit of %d", len(note.Message), maxNoteBytes)
		}
		for _, earlier := range s.addNote(note) {
			if err := stream.Send(earlier); err != nil {
				return err
			}
		}
	}
}

// Keeps `note` and returns the notes kept at its location before it. A
// location keeps its newest maxNotesPerLocation notes; past maxNotes in all,
// the oldest note kept anywhere goes.
func (s *routeGuideServer) addNote(note *pb.RouteNote) []*pb.RouteNote {
	key := keyOf(note.Location)
	s.mu.Lock()
	defer s.mu.Unlock()
	earlier := s.notes[key]
	replies := make([]*pb.RouteNote, len(earlier))
	for i, kept := range earlier {
		replies[i] = kept.note
	}
	s.sequence++
	kept := append(earlier, keptNote{s.sequence, note})
	s.kept++
	if len(kept) > maxNotesPerLocation {
		kept[0] = keptNote{} // so the dropped note can be freed
		kept = kept[1:]
		s.kept--
	}
	s.notes[key] = kept
	s.noteOrder = append(s.noteOrder, orderEntry{key, s.sequence})
	for s.kept > maxNotes {
		oldest := s.noteOrder[0]
		s.noteOrder = s.noteOrder[1:]
		// An entry whose note its location already dropped is skipped.
		if atLocation := s.notes[oldest.key]; len(atLocation) > 0 && atLocation[0].sequence == oldest.sequence {
			atLocation[0] = keptNote{}
			if len(atLocation) == 1 {
				delete(s.notes, oldest.key)
			} else {
				s.notes[oldest.key] = atLocation[1:]
			}
			s.kept--
		}
	}
	// Entries of dropped notes pile up when a few locations take every note.
	if len(s.noteOrder) > 2*maxNotes {
		live := s.noteOrder[:0]
		for _, entry := range s.noteOrder {
			for _, n := range s.notes[entry.key] {
				if n.sequence == entry.sequence {
					live = append(live, entry)
					break
				}
			}
		}
		s.noteOrder = live
	}
	return replies
}

// The features of a JSON array, in its order; as our loader, it refuses
// anything else, a point out of range and two features at one point.
func loadFeatures(data []byte, name string) ([]*pb.Feature, error) {
	var parsed []jsonFeature
	if err := json.Unmarshal(data, &parsed); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if parsed == nil {
		return nil, fmt.Errorf("%s: not a JSON array of features", name)
	}
	features := make([]*pb.Feature, 0, len(parsed))
	seen := make(map[location]int, len(parsed))
	for i, f := range parsed {
		feature := &pb.Feature{Name: f.Name, Location: &pb.Point{
			Latitude: f.Location.Latitude, Longitude: f.Location.Longitude}}
		if err := validatePoint(feature.Location, "location"); err != nil {
			return nil, fmt.Errorf("%s: [%d]: %v", name, i, err)
		}
		if first, ok := seen[keyOf(feature.Location)]; ok {
			return nil, fmt.Errorf("%s: [%d] is at the same point as [%d]", name, i, first)
		}
		seen[keyOf(feature.Location)] = i
		features = append(features, feature)
	}
	return features, nil
}

func usageError(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-baseline-server: "+format+"\n", args...)
	os.Exit(exitUsage)
}

func main() {
	flags := flag.NewFlagSet("go-baseline-server", flag.ContinueOnError)
	address := flags.String("address", defaultAddress, "HOST:PORT to listen on; port 0 picks a free one")
	db := flags.String("db", "", "feature database (JSON); default: the built-in one")
	if err := flags.Parse(os.Args[1:]); err != nil {
		os.Exit(exitUsage)
	}
	if flags.NArg() > 0 {
		usageError("unexpected argument %q", flags.Arg(0))
	}
	if host, _, err := net.SplitHostPort(*address); err != nil || strings.TrimSpace(host) == "" {
		usageError("--address must be HOST:PORT, got %q", *address)
	}
	data, name := builtInDatabase, "built-in database"
	if *db != "" {
		var err error
		if data, err = ioutil.ReadFile(*db); err != nil {
			usageError("%v", err)
		}
		name = *db
	}
	features, err := loadFeatures(data, name)
	if err != nil {
		usageError("%v", err)
	}
	server := &routeGuideServer{
		features: features,
		byPoint:  make(map[location]*pb.Feature, len(features)),
		notes:    make(map[location][]keptNote),
	}
	for _, f := range features {
		server.byPoint[keyOf(f.Location)] = f
	}

	// Signals are caught before the port is announced, so a test that
	// signals right after the log line is never killed by the default action.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)

	listener, err := net.Listen("tcp", *address)
	if err != nil {
		usageError("cannot listen on %s: %v", *address, err)
	}
	grpcServer := grpc.NewServer()
	pb.RegisterRouteGuideServer(grpcServer, server)
	fmt.Fprintf(os.Stderr, "go baseline listening on %s (port %d), %d features\n",
		*address, listener.Addr().(*net.TCPAddr).Port, len(features))

	served := make(chan error, 1)
	go func() { served <- grpcServer.Serve(listener) }()
	select {
	case <-signals:
	case err := <-served:
		fmt.Fprintf(os.Stderr, "go-baseline-server: %v\n", err)
		os.Exit(1)
	}
	stopped := make(chan struct{})
	go func() { grpcServer.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(shutdownGrace):
		grpcServer.Stop()
	}
}
