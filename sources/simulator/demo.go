package simulator

import "time"

// Demo credentials. They are not secrets: they only open the simulator.
const (
	DemoProjectID = "0a6c3d5e9f1b4c2d8e7f6a5b4c3d2e1f"
	DemoAK        = "HWCAUDITDEMOAK00000001"
	DemoSK        = "hwcaudit-demo-secret-key-not-a-real-one"
	DemoToken     = "hwcaudit-demo-iam-token"
)

// Sizes of the demo's TaurusDB and DBSS datasets.
const (
	DemoTaurusDBFiles = 138
	// DemoTaurusDBSQLRecords is the number of SQL statements in each demo
	// TaurusDB audit log file (CSV with a header row).
	DemoTaurusDBSQLRecords = 20
	DemoDBSSRecords        = 3000
	// DemoDBSSSQLRecords and DemoDBSSAlarms are the SQL audit records and
	// alarm logs of the demo's DBSS instance.
	DemoDBSSSQLRecords = 6000
	DemoDBSSAlarms     = 120
	// DemoArtifactRecords is the number of audit records of each demo
	// CodeArts Artifact repository.
	DemoArtifactRecords = 400
	DemoArtifactTenant  = "5a775fdcb14f4431b6c0015618140bc3"
	// DemoCTSTraces and DemoCTSDataTraces are the management and data
	// traces of the demo project's Cloud Trace Service.
	DemoCTSTraces     = 2000
	DemoCTSDataTraces = 500
)

// DemoConfig is the dataset the demo command serves: two SWR Enterprise
// instances with 3,000 records per operation each, one TaurusDB instance
// with DemoTaurusDBFiles audit log files of DemoTaurusDBSQLRecords SQL
// statements each (download links and files served) and one DBSS instance
// with DemoDBSSRecords operation logs, DemoDBSSSQLRecords SQL audit records
// and DemoDBSSAlarms alarm logs (which close a while after they were
// raised), one CodeArts Artifact tenant with a file store and a repository
// of DemoArtifactRecords audit records each, the project's DemoCTSTraces
// management and DemoCTSDataTraces data traces, all spread over the 23 hours ending 30
// minutes before base, so that an exporter started at
// base with the default start time of 24 hours ago collects all of them.
// It accepts DemoAK/DemoSK signatures and the DemoToken token. Pass the
// exporter's clock reading as base; the server clock (Config.Now) stays
// time.Now so that real signatures verify.
func DemoConfig(base time.Time) Config {
	const perOp = 3000
	const span = 23 * time.Hour
	start := base.Add(-span - 30*time.Minute).UTC().Truncate(time.Second)
	return Config{
		ProjectID:   DemoProjectID,
		Credentials: []Credential{{AK: DemoAK, SK: DemoSK}},
		Tokens:      []Token{{Value: DemoToken}},
		Seed:        20201224,
		SWR: SWRConfig{
			Instances: []string{
				"7f3c2a10-5b8e-4d21-9c4f-0e6a1b2c3d4e",
				"c41d9e27-86a3-4f0b-b5d2-9a8e7f6c5b4a",
			},
			RecordsPerOperation: perOp,
			Start:               start,
			Interval:            span / time.Duration(numSWROps*perOp),
		},
		TaurusDB: TaurusDBConfig{
			Instances: []string{"5e2b7c9a1d3f4e6b8a0c2d4f6e8a0b1cin07"},
			Files:     DemoTaurusDBFiles,
			Start:     start,
			Interval:  span / DemoTaurusDBFiles,
			SQL:       TaurusDBSQLConfig{Records: DemoTaurusDBSQLRecords, Format: SQLCSVHeader},
		},
		DBSS: DBSSConfig{
			Instances:     []string{"9d1e6f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a"},
			Records:       DemoDBSSRecords,
			Start:         start,
			Interval:      span / DemoDBSSRecords,
			SQLRecords:    DemoDBSSSQLRecords,
			SQLInterval:   span / DemoDBSSSQLRecords,
			Alarms:        DemoDBSSAlarms,
			AlarmInterval: span / DemoDBSSAlarms,
			Variants:      DBSSVariants{AlarmStatusChanges: true},
		},
		Artifact: ArtifactConfig{
			TenantID: DemoArtifactTenant,
			Repos: []ArtifactRepo{
				{Module: "file", Repo: "cn-north-4_5a775fdcb14f4431b6c0015618140bc3_maven_1_108"},
				{Module: "repository", Repo: "cn-north-4_5a775fdcb14f4431b6c0015618140bc3_npm_1_109"},
			},
			RecordsPerRepo: DemoArtifactRecords,
			Start:          start,
			Interval:       span / DemoArtifactRecords,
		},
		CTS: CTSConfig{
			Traces:     DemoCTSTraces,
			DataTraces: DemoCTSDataTraces,
			Start:      start,
			Interval:   span / DemoCTSTraces,
			MaxLag:     90 * time.Second,
		},
	}
}
