// Open an .osm file and save it where JOSM's File > Save would (OsmWriter): what a mapper's edits leave.
// Usage: java -cp josm.jar tests/JosmSave.java IN.osm OUT.osm
import java.io.*;
import java.nio.charset.StandardCharsets;
import org.openstreetmap.josm.data.Preferences;
import org.openstreetmap.josm.data.osm.DataSet;
import org.openstreetmap.josm.gui.progress.NullProgressMonitor;
import org.openstreetmap.josm.io.OsmReader;
import org.openstreetmap.josm.io.OsmWriter;
import org.openstreetmap.josm.io.OsmWriterFactory;
import org.openstreetmap.josm.spi.preferences.Config;

public class JosmSave {
    public static void main(String[] args) throws Exception {
        Config.setPreferencesInstance(new Preferences());
        DataSet data = OsmReader.parseDataSet(new FileInputStream(args[0]), NullProgressMonitor.INSTANCE);
        try (PrintWriter pw = new PrintWriter(new OutputStreamWriter(new FileOutputStream(args[1]), StandardCharsets.UTF_8));
             OsmWriter w = OsmWriterFactory.createOsmWriter(pw, false, "0.6")) {
            w.write(data);
        }
    }
}
